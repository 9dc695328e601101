using EdgeBlock.Fuzz;
using SharpFuzz;

// EdgeBlock.Fuzz TARGET                 under afl-fuzz: SharpFuzz's fork server, one input per run from stdin
// EdgeBlock.Fuzz TARGET FILE|DIR...     replays inputs (a crash found by a campaign, or a whole corpus)
// EdgeBlock.Fuzz seeds DIR              writes the hand-made seed corpus (tests/fuzz/corpus)
if (args.Length == 0 || args[0] is "-h" or "--help")
{
    Console.Error.WriteLine($"usage: EdgeBlock.Fuzz TARGET [FILE|DIR...] | seeds DIR\ntargets: {string.Join(", ", FuzzTargets.Names)}");
    return 2;
}
if (args[0] == "seeds")
{
    if (args.Length != 2) { Console.Error.WriteLine("usage: EdgeBlock.Fuzz seeds DIR"); return 2; }
    Seeds.WriteAll(args[1]);
    return 0;
}
if (!FuzzTargets.TryGet(args[0], out var create))
{
    Console.Error.WriteLine($"unknown target '{args[0]}'; targets: {string.Join(", ", FuzzTargets.Names)}");
    return 2;
}
if (args.Length > 1)
{
    // Outside afl-fuzz, Fuzzer.Run runs the action once over a private coverage map, which the instrumented
    // assemblies of run.sh need as much as a campaign does.
    int result = 1;
    Fuzzer.Run(_ => result = Replay.Run(create(), args[1..]));
    return result;
}

// A fixed buffer: the persistent loop reuses it, so a run allocates only what the code under test does.
var input = new byte[FuzzTargets.MaxInputBytes];
FuzzTarget? target = null;
Fuzzer.Run(stream =>
{
    int length = stream.ReadAtLeast(input, input.Length, throwOnEndOfStream: false);
    target ??= create();
    FuzzTargets.RunOne(target, input.AsSpan(0, length));
});
return 0;
