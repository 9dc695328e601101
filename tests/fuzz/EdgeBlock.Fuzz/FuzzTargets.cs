namespace EdgeBlock.Fuzz;

/// <summary>A fuzz target: runs one input through real code; an exception that escapes it is a finding.</summary>
internal delegate void FuzzTarget(ReadOnlySpan<byte> input);

/// <summary>The targets by name, and what every run checks besides the target's own verdict.</summary>
internal static class FuzzTargets
{
    /// <summary>Longer inputs are cut: every parser bounds its units well below this, and short inputs run fast.</summary>
    public const int MaxInputBytes = 256 * 1024;

    private static readonly Dictionary<string, Func<FuzzTarget>> Targets = new()
    {
        ["nvme-tcp"] = () => new NvmeTcpTarget().Run,
        ["vhost-msg"] = () => new VhostMessageTarget().Run,
        ["vhost-ring"] = () => new VhostRingTarget().Run,
        ["config"] = () => new ConfigImportTarget().Run,
        ["qcow2"] = () => new Qcow2Target().Run,
    };

    public static IEnumerable<string> Names => Targets.Keys;

    /// <summary>
    /// The target's constructor, to call once fuzzing has started: instrumented code must not run before
    /// SharpFuzz's Fuzzer.Run has set up the coverage map (it writes through a null pointer otherwise).
    /// </summary>
    public static bool TryGet(string name, out Func<FuzzTarget> create) => Targets.TryGetValue(name, out create!);

    /// <summary>
    /// One run. Besides exceptions, an input that leaves the process above the resident-set bound is a finding:
    /// that is how an allocation sized by a hostile field (native buffers included, which the GC heap limit
    /// of run.sh does not see) is reported.
    /// </summary>
    public static void RunOne(FuzzTarget target, ReadOnlySpan<byte> input)
    {
        target(input);
        long rss = Environment.WorkingSet;
        if (rss > MaxResidentBytes)
            throw new UnboundedAllocationException($"resident set {rss >> 20} MiB after one input, bound {MaxResidentBytes >> 20} MiB");
    }

    /// <summary>EDGEBLOCK_FUZZ_RSS_MB, 1 GiB by default: a run starts near 100 MiB.</summary>
    private static readonly long MaxResidentBytes =
        (long.TryParse(Environment.GetEnvironmentVariable("EDGEBLOCK_FUZZ_RSS_MB"), out long mb) ? mb : 1024) << 20;
}

internal sealed class UnboundedAllocationException(string message) : Exception(message);
