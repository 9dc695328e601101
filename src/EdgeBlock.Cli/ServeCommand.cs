using System.CommandLine;
using System.Net;
using EdgeBlock.Api;
using EdgeBlock.Daemon;
using EdgeBlock.Daemon.KernelEngine;

namespace EdgeBlock.Cli;

/// <summary>`edgeblock serve`: the daemon with a file-backed default namespace, no configuration needed.</summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var dataDir = new Option<string>("--data-dir")
        {
            Description = "Directory for the daemon's data (default.img lives here)",
            DefaultValueFactory = _ => DaemonOptions.DefaultDataDirectory(),
        };
        var listen = new Option<string>("--listen")
        {
            Description = "Address and port for NVMe/TCP (use 0.0.0.0:4420 to accept other machines); given explicitly, it replaces the listeners of an existing config (and is saved)",
            DefaultValueFactory = _ => $"127.0.0.1:{DaemonOptions.DefaultPort}",
        };
        listen.Validators.Add(r =>
        {
            if (!IPEndPoint.TryParse(r.GetValueOrDefault<string>() ?? "", out _))
                r.AddError($"--listen '{r.GetValueOrDefault<string>()}' is not ADDRESS:PORT (example: 127.0.0.1:4420)");
        });
        var size = new Option<string>("--default-size")
        {
            Description = "Size of the default namespace (e.g. 8G, 512M) when the config is first written",
            DefaultValueFactory = _ => "8G",
        };
        size.Validators.Add(r =>
        {
            if (!Sizes.TryParse(r.GetValueOrDefault<string>() ?? "", out long bytes, out string error)) r.AddError($"--default-size: {error}");
            else if (bytes < 1 << 20 || bytes % 4096 != 0) r.AddError($"--default-size: {bytes} bytes; it must be at least 1M and a multiple of 4K");
        });
        var backend = new Option<BackendKind>("--default-backend")
        {
            Description = "Backend of the default namespace: file (persistent, default), memory, or null (benchmarks)",
            DefaultValueFactory = _ => BackendKind.File,
        };
        backend.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<BackendKind>() == BackendKind.Volume)
                r.AddError("--default-backend volume: volumes are exported with `edgeblock namespace add NQN --volume POOL/NAME`; use file, memory or null here");
        });
        var allowHost = new Option<string[]>("--allow-host")
        {
            Description = "Host NQN allowed to connect to the default subsystem (repeatable); without it any host may connect. Given, it replaces that subsystem's host list in an existing config",
            AllowMultipleArgumentsPerToken = false,
        };
        allowHost.Validators.Add(r =>
        {
            foreach (string nqn in r.GetValueOrDefault<string[]>() ?? [])
                if (!Nvme.Nqn.IsValid(nqn, out string why)) r.AddError($"--allow-host '{nqn}' is not a valid NQN: {why}");
        });

        var storageRoot = new Option<string[]>("--storage-root")
        {
            Description = "A directory whose files may be backends and pool drives besides the data directory (repeatable); added to the config's storage_roots",
            AllowMultipleArgumentsPerToken = false,
        };

        var metrics = new Option<string?>("--metrics")
        {
            Description = "Serve Prometheus metrics on ADDRESS:PORT (e.g. 127.0.0.1:9420); off by default",
        };
        metrics.Validators.Add(r =>
        {
            string? value = r.GetValueOrDefault<string?>();
            if (value != null && !IPEndPoint.TryParse(value, out _)) r.AddError($"--metrics '{value}' is not ADDRESS:PORT (example: 127.0.0.1:9420)");
        });

        var config = new Option<string?>("--config")
        {
            Description = "Desired-state file (default: <data-dir>/edgeblock.json, written with the default subsystem on first start)",
        };

        var engine = new Option<TargetEngine>("--engine")
        {
            Description = "Who serves the configuration: edgeblock (EdgeBlock's own NVMe/TCP target, default) or kernel (the Linux in-kernel target, nvmet, configured through /sys/kernel/config/nvmet; file:PATH backends only)",
            DefaultValueFactory = _ => TargetEngine.EdgeBlock,
        };
        engine.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<TargetEngine>() == TargetEngine.Kernel && r.Parent?.GetResult(backend) is { Implicit: false } b && b.GetValueOrDefault<BackendKind>() != BackendKind.File)
                r.AddError($"--engine kernel serves only file:PATH backends (block devices or files); --default-backend {b.GetValueOrDefault<BackendKind>().ToString().ToLowerInvariant()} cannot go to the kernel target");
        });

        var memoryBudget = new Option<string?>("--memory-budget")
        {
            Description = "Memory for I/O data buffers, all connections together (e.g. 64M); at the budget new commands wait. Default: 1/32 of the memory, at most 64M",
        };
        memoryBudget.Validators.Add(r =>
        {
            string? value = r.GetValueOrDefault<string?>();
            if (value == null) return;
            if (!Sizes.TryParse(value, out long bytes, out string error)) r.AddError($"--memory-budget: {error}");
            else if (bytes < MinMemoryBudgetBytes) r.AddError($"--memory-budget {value}: at least 1M is needed (a few commands of the largest transfer, 128K)");
        });

        var busyPoll = new Option<string?>("--busy-poll")
        {
            Description = "After each batch, NVMe/TCP connections read without sleeping for this long (e.g. 50us, at most 1ms): lower latency at low queue depth for CPU while hosts are active; off by default",
        };
        busyPoll.Validators.Add(r =>
        {
            string? value = r.GetValueOrDefault<string?>();
            if (value == null) return;
            if (!BenchOptions.TryParseDuration(value, out TimeSpan window, out string error)) r.AddError($"--busy-poll: {error}");
            else if (window > MaxBusyPoll) r.AddError($"--busy-poll {value}: at most 1ms (a longer spin holds the socket thread from other connections)");
        });

        var command = new Command("serve", "Run the EdgeBlock daemon (NVMe/TCP target with a default subsystem)")
        {
            dataDir, listen, size, backend, allowHost, storageRoot, metrics, config, engine, memoryBudget, busyPoll,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            PreferInlineSocketCompletions();
            Sizes.TryParse(parse.GetValue(size)!, out long sizeBytes, out _);
            string dataDirectory = Path.GetFullPath(parse.GetValue(dataDir)!);
            var options = new DaemonOptions
            {
                DataDirectory = dataDirectory,
                ConfigPath = parse.GetValue(config),
                ApiSocketPath = ManagementCommands.ServeApiSocket(parse, explicitDataDir: parse.GetResult(dataDir) is { Implicit: false }, dataDirectory),
                Listen = IPEndPoint.Parse(parse.GetValue(listen)!),
                ListenExplicit = parse.GetResult(listen) is { Implicit: false },
                DefaultSizeBytes = sizeBytes,
                DefaultBackend = parse.GetValue(backend),
                AllowedHosts = parse.GetValue(allowHost) ?? [],
                StorageRoots = (parse.GetValue(storageRoot) ?? []).Select(r => Path.GetFullPath(r)).ToList(),
                MetricsEndpoint = parse.GetValue(metrics) is { } m ? IPEndPoint.Parse(m) : null,
                Engine = parse.GetValue(engine),
                MemoryBudgetBytes = parse.GetValue(memoryBudget) is { } budget && Sizes.TryParse(budget, out long budgetBytes, out _) ? budgetBytes : null,
                BusyPoll = parse.GetValue(busyPoll) is { } poll && BenchOptions.TryParseDuration(poll, out TimeSpan window, out _) ? window : TimeSpan.Zero,
            };
            try
            {
                return await DaemonHost.RunAsync(options, PrintHowToConnect, cancellationToken);
            }
            catch (Exception ex) when (ex is InvalidOperationException or IOException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"edgeblock: {ex.Message}");
                return 1;
            }
        });
        return command;
    }

    private const long MinMemoryBudgetBytes = 1L << 20;
    private static readonly TimeSpan MaxBusyPoll = TimeSpan.FromMilliseconds(1);

    private static void PrintHowToConnect(EdgeBlockDaemon daemon)
    {
        string api = daemon.Management.ApiSocket is { } socket ? $"Manage it with: edgeblock --api-socket {socket} status (config: {daemon.Management.ConfigPath})" : "";
        if (daemon.KernelTarget is { } kernel)
        {
            Console.WriteLine($"EdgeBlock is managing the Linux kernel target (nvmet) through {kernel.Root}; it keeps serving when this daemon stops. {api}");
            return;
        }
        if (daemon.ListenEndPoint is not { } ep)
        {
            Console.WriteLine($"EdgeBlock is running with no NVMe/TCP listener (add one: edgeblock listener add 127.0.0.1:4420). {api}");
            return;
        }
        string addr = ep.Address.Equals(IPAddress.Any) ? "<this host's address>" : ep.Address.ToString();
        Console.WriteLine($"""

            EdgeBlock is serving NVMe/TCP on {ep}. From a Linux host (modprobe nvme-tcp):
              nvme discover -t tcp -a {addr} -s {ep.Port}
              nvme connect  -t tcp -a {addr} -s {ep.Port} -n {DaemonOptions.DefaultSubsystemNqn}
            (from a QEMU guest with user networking, the host's 127.0.0.1 is 10.0.2.2). Ctrl-C stops the daemon.
            {api}

            """);
    }

    private const string InlineCompletionsVariable = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    /// <summary>
    /// Socket completions run on the socket engine's thread instead of hopping to the thread pool:
    /// the NVMe/TCP receive loop then parses and answers a batch without a context switch, which
    /// cut the server CPU per 4 KiB read by ~45% here (BENCHMARKS.md). Safe because nothing on the
    /// receive path blocks (file I/O runs on the thread pool). The runtime reads the variable when
    /// the first socket is used, so it is set before anything else; an explicit setting wins.
    /// </summary>
    private static void PreferInlineSocketCompletions()
    {
        if (Environment.GetEnvironmentVariable(InlineCompletionsVariable) is null)
            Environment.SetEnvironmentVariable(InlineCompletionsVariable, "1");
    }
}
