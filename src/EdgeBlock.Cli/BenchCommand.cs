using EdgeBlock.Nvme.Auth;
using System.CommandLine;

namespace EdgeBlock.Cli;

/// <summary>`edgeblock bench`: a load generator over the .NET NVMe/TCP host (fio's figures for our own runs).</summary>
internal static class BenchCommand
{
    private sealed class Options
    {
        public readonly Option<string> Addr = new("--addr")
        {
            Description = "Target address and port (IPv6 in brackets)",
            DefaultValueFactory = _ => "127.0.0.1:4420",
        };
        public readonly Option<string> Nqn = new("--nqn")
        {
            Description = "Subsystem NQN (edgeblock serve exports nqn.2026-11.io.edgeblock:default)",
            DefaultValueFactory = _ => "nqn.2026-11.io.edgeblock:default",
        };
        public readonly Option<uint> Nsid = new("--nsid") { Description = "Namespace ID", DefaultValueFactory = _ => 1 };
        public readonly Option<string> Rw = new("--rw")
        {
            Description = "I/O pattern: randread, randwrite, read, write or randrw",
            DefaultValueFactory = _ => "randread",
        };
        public readonly Option<int> RwmixRead = new("--rwmix-read") { Description = "Percentage of reads with --rw randrw", DefaultValueFactory = _ => 70 };
        public readonly Option<string> Bs = new("--bs") { Description = "I/O size (4k, 128k, ...)", DefaultValueFactory = _ => "4k" };
        public readonly Option<int> Qd = new("--qd") { Description = "Commands in flight per queue", DefaultValueFactory = _ => 32 };
        public readonly Option<int> Queues = new("--queues") { Description = "I/O queues (TCP connections)", DefaultValueFactory = _ => 1 };
        public readonly Option<string> Time = new("--time") { Description = "Measured time (15s, 2m, 500ms)", DefaultValueFactory = _ => "15s" };
        public readonly Option<string> Ramp = new("--ramp") { Description = "Load before the measured time (warms up both ends)", DefaultValueFactory = _ => "0s" };
        public readonly Option<bool> Verify = new("--verify")
        {
            Description = "Write a pattern with a per-block header (LBA, seed, CRC32C) over the range, run the workload, read it all back and check it; exit 1 on any mismatch",
        };
        public readonly Option<string> SizeLimit = new("--size-limit")
        {
            Description = "Use only the first BYTES of the namespace (default: all of it; with --verify at most 1G)",
        };
        public readonly Option<string> IoLimit = new("--io-limit") { Description = "Stop after BYTES of I/O (counting the ramp), or at --time, whichever comes first" };
        public readonly Option<bool> Json = new("--json") { Description = "Print one JSON object with every figure instead of text" };
        public readonly Option<string> HostNqn = new("--hostnqn") { Description = "Host NQN to connect as (default: a new nqn.2014-08.org.nvmexpress:uuid:...)" };
        public readonly Option<string> Digest = new("--digest") { Description = "NVMe/TCP digests: header, data, header,data or none", DefaultValueFactory = _ => "none" };
        public readonly Option<int?> ServerPid = new("--server-pid")
        {
            Description = "Target process ID on this machine: report its CPU time per I/O over the measured window (from /proc/PID/stat)",
        };
        public readonly Option<ulong?> Seed = new("--seed") { Description = "Seed of the random offsets and the verify pattern (default: random)" };
        public readonly Option<int?> Compressible = new("--compressible")
        {
            Description = "Write data that compresses about N:1 (each 4 KiB: 1/N new random bytes, then a repeated text; 1: incompressible) instead of zeroes",
        };

        public readonly Option<string> DhchapSecretFile = new("--dhchap-secret-file")
        {
            Description = "Authenticate each queue with DH-HMAC-CHAP using the host secret in this file (DHHC-1:XX:...: as nvme gen-dhchap-key prints it)",
        };
        public readonly Option<string> DhchapCtrlSecretFile = new("--dhchap-ctrl-secret-file")
        {
            Description = "Also authenticate the controller (bidirectional) with the secret in this file; needs --dhchap-secret-file",
        };

        public readonly Option<bool> Idle = new("--idle")
        {
            Description = "Connect and send no I/O for --time (keep alives only): what idle hosts cost the target",
        };
        public readonly Option<int> Controllers = new("--controllers")
        {
            Description = "With --idle: controllers to connect, each with --queues I/O queues", DefaultValueFactory = _ => 1,
        };

        public readonly Option<int> RateIops = new("--rate-iops")
        {
            Description = "Pace the workload to N commands per second in all (each command slot waits QD×queues/N between its commands, in whole ms; latency counts from the send), as fio's rate_iops",
        };

        public IEnumerable<Option> All => [Addr, Nqn, Nsid, Rw, RwmixRead, Bs, Qd, Queues, Time, Ramp, Verify, SizeLimit, IoLimit, Json, HostNqn, Digest, ServerPid, Seed, Compressible,
            DhchapSecretFile, DhchapCtrlSecretFile, Idle, Controllers, RateIops];
    }

    public static Command Create()
    {
        var o = new Options();
        var command = new Command("bench", "Measure a namespace over NVMe/TCP: IOPS, MB/s, latency percentiles, errors, CPU per I/O");
        foreach (var option in o.All) command.Options.Add(option);
        command.SetAction(async (parse, cancellationToken) =>
        {
            var (options, errors) = Bind(parse, o);
            if (options == null)
            {
                foreach (string e in errors) Console.Error.WriteLine($"edgeblock bench: {e}");
                return 2;
            }
            return await RunAsync(options, cancellationToken);
        });
        return command;
    }

    /// <summary>Parses `bench` arguments into options, or the errors a user can fix (for tests and tools).</summary>
    public static (BenchOptions? Options, IReadOnlyList<string> Errors) Parse(params string[] args)
    {
        var o = new Options();
        var command = new Command("bench");
        foreach (var option in o.All) command.Options.Add(option);
        var root = new RootCommand { command };
        var parse = root.Parse(["bench", .. args]);
        if (parse.Errors.Count > 0) return (null, parse.Errors.Select(e => e.Message).ToList());
        return Bind(parse, o);
    }

    private static (BenchOptions? Options, IReadOnlyList<string> Errors) Bind(ParseResult r, Options o)
    {
        var errors = new List<string>();
        if (!BenchOptions.TryParseAddress(r.GetValue(o.Addr) ?? "", out string host, out int port, out string error)) errors.Add(error);
        if (!BenchOptions.TryParsePattern(r.GetValue(o.Rw) ?? "", out var pattern))
            errors.Add($"--rw '{r.GetValue(o.Rw)}' is not a pattern (use randread, randwrite, read, write or randrw)");
        long bs = 0, sizeLimit = 0, ioLimit = 0;
        if (!BenchOptions.TryParseBytes("--bs", r.GetValue(o.Bs) ?? "", out bs, out error)) errors.Add(error);
        if (r.GetValue(o.SizeLimit) is { } sl && !BenchOptions.TryParseBytes("--size-limit", sl, out sizeLimit, out error)) errors.Add(error);
        if (r.GetValue(o.IoLimit) is { } il && !BenchOptions.TryParseBytes("--io-limit", il, out ioLimit, out error)) errors.Add(error);
        if (!BenchOptions.TryParseDuration(r.GetValue(o.Time) ?? "", out var time, out error)) errors.Add($"--time: {error}");
        if (!BenchOptions.TryParseDuration(r.GetValue(o.Ramp) ?? "", out var ramp, out error)) errors.Add($"--ramp: {error}");
        if (!BenchOptions.TryParseDigest(r.GetValue(o.Digest) ?? "", out bool hd, out bool dd, out error)) errors.Add(error);
        if (bs > int.MaxValue) errors.Add($"--bs {bs}: too large");
        DhchapKey? secret = BenchOptions.ReadDhchapSecret("--dhchap-secret-file", r.GetValue(o.DhchapSecretFile), errors);
        DhchapKey? ctrlSecret = BenchOptions.ReadDhchapSecret("--dhchap-ctrl-secret-file", r.GetValue(o.DhchapCtrlSecretFile), errors);
        if (ctrlSecret != null && r.GetValue(o.DhchapSecretFile) == null) errors.Add("--dhchap-ctrl-secret-file needs --dhchap-secret-file");
        if (errors.Count > 0) return (null, errors);

        var options = new BenchOptions
        {
            Host = host,
            Port = port,
            SubsystemNqn = r.GetValue(o.Nqn) ?? "",
            HostNqn = r.GetValue(o.HostNqn),
            Nsid = r.GetValue(o.Nsid),
            Pattern = pattern,
            ReadMixPercent = r.GetValue(o.RwmixRead),
            BlockSize = (int)bs,
            QueueDepth = r.GetValue(o.Qd),
            Queues = r.GetValue(o.Queues),
            Duration = time,
            Ramp = ramp,
            Verify = r.GetValue(o.Verify),
            SizeLimit = sizeLimit,
            IoLimit = ioLimit,
            Json = r.GetValue(o.Json),
            HeaderDigest = hd,
            DataDigest = dd,
            ServerPid = r.GetValue(o.ServerPid),
            Seed = r.GetValue(o.Seed),
            Compressible = r.GetValue(o.Compressible),
            DhchapSecret = secret,
            DhchapControllerSecret = ctrlSecret,
            Idle = r.GetValue(o.Idle),
            Controllers = r.GetValue(o.Controllers),
            RateIops = r.GetValue(o.RateIops),
        };
        var invalid = options.Validate();
        return invalid.Count > 0 ? (null, invalid) : (options, []);
    }

    /// <summary>Read once by .NET's socket engine when the first socket operation starts (SocketAsyncEngine.Unix).</summary>
    private const string InlineSocketCompletionsVariable = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    private static async Task<int> RunAsync(BenchOptions options, CancellationToken cancellationToken)
    {
        // Run socket continuations on the epoll thread: with the host's inline completions the whole round (receive,
        // complete, submit the next commands, send) then stays on one thread, which halves the generator's CPU per I/O
        // on a pinned core. Nothing in the bench blocks there. The process has made no socket call yet, so this takes
        // effect; an explicit setting in the environment wins.
        if (Environment.GetEnvironmentVariable(InlineSocketCompletionsVariable) == null)
            Environment.SetEnvironmentVariable(InlineSocketCompletionsVariable, "1");
        // The progress line only on a terminal; piped output stays clean for scripts.
        var progress = Console.IsOutputRedirected ? null : Console.Out;
        if (options.Idle) return await BenchIdle.RunAsync(options, progress ?? Console.Error, cancellationToken);
        BenchResult result;
        try
        {
            result = await new BenchRunner(options, progress).RunAsync(cancellationToken);
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or System.Net.Sockets.SocketException or TimeoutException)
        {
            Console.Error.WriteLine($"edgeblock bench: {ex.Message}");
            return 2;
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("edgeblock bench: interrupted");
            return 130;
        }
        Console.Out.Write(options.Json ? BenchReport.ToJson(result) + Environment.NewLine : BenchReport.ToText(result));
        if (!result.Ok)
        {
            string why = result.TransportError != null ? "the connection failed"
                : result.Verify is { Mismatches: > 0 } v ? $"{v.Mismatches} blocks failed verification"
                : $"{result.ErrorCount} commands ended with an NVMe error";
            Console.Error.WriteLine($"edgeblock bench: {why}");
            return 1;
        }
        return 0;
    }
}
