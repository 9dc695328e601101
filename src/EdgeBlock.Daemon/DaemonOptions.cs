using System.Net;

namespace EdgeBlock.Daemon;

/// <summary>What `edgeblock serve` was asked to do. Defaults give a working daemon with no configuration.</summary>
public sealed record DaemonOptions
{
    public const string DefaultSubsystemNqn = "nqn.2026-11.io.edgeblock:default";
    public const int DefaultPort = 4420;
    public const string ConfigFileName = "edgeblock.json";

    public required string DataDirectory { get; init; }
    /// <summary>The NVMe/TCP listener of a new config (and of every start when <see cref="ListenExplicit"/>).</summary>
    public IPEndPoint Listen { get; init; } = new(IPAddress.Loopback, DefaultPort);
    /// <summary>--listen was given: the configured listeners are replaced by <see cref="Listen"/> (and saved).</summary>
    public bool ListenExplicit { get; init; }
    public long DefaultSizeBytes { get; init; } = 8L << 30;
    public BackendKind DefaultBackend { get; init; } = BackendKind.File;
    /// <summary>Where to serve Prometheus /metrics; null: off.</summary>
    public IPEndPoint? MetricsEndpoint { get; init; }
    /// <summary>When non-empty, the default subsystem admits only these host NQNs (seeds a new config; replaces its host list on later starts).</summary>
    public IReadOnlyList<string> AllowedHosts { get; init; } = [];
    /// <summary>--storage-root: directories added to the config's storage_roots (and saved); see <see cref="Management.StoragePolicy"/>.</summary>
    public IReadOnlyList<string> StorageRoots { get; init; } = [];
    /// <summary>The desired-state file; null means <c>&lt;data dir&gt;/edgeblock.json</c>.</summary>
    public string? ConfigPath { get; init; }
    /// <summary>The management API's Unix socket; null means no API (embedded use and tests).</summary>
    public string? ApiSocketPath { get; init; }
    /// <summary>Who serves the desired state: EdgeBlock's own target, or the Linux kernel target through configfs (KernelEngine/).</summary>
    public KernelEngine.TargetEngine Engine { get; init; } = KernelEngine.TargetEngine.EdgeBlock;
    /// <summary>nvmet's configfs directory for <see cref="KernelEngine.TargetEngine.Kernel"/> (tests use a fake tree).</summary>
    public string KernelConfigfsRoot { get; init; } = KernelEngine.KernelTarget.DefaultRoot;

    /// <summary>--memory-budget: bytes of I/O data buffers at once, all transports together; null: <see cref="EffectiveMemoryBudgetBytes"/> picks.</summary>
    public long? MemoryBudgetBytes { get; init; }

    /// <summary>
    /// --busy-poll: after each batch an NVMe/TCP connection reads without sleeping for this long (0: off), which cuts
    /// QD1 latency by the epoll wake-up at the cost of CPU while hosts are active (none while idle).
    /// </summary>
    public TimeSpan BusyPoll { get; init; }

    /// <summary>The budget given, else <see cref="Storage.DataBufferPool.DefaultBudgetBytes"/> of the memory the runtime sees (the cgroup limit in a container).</summary>
    public long EffectiveMemoryBudgetBytes =>
        MemoryBudgetBytes ?? Storage.DataBufferPool.DefaultBudgetBytes(GC.GetGCMemoryInfo().TotalAvailableMemoryBytes);

    public string EffectiveConfigPath => Path.GetFullPath(ConfigPath ?? Path.Combine(DataDirectory, ConfigFileName));

    /// <summary>$XDG_DATA_HOME/edgeblock, or ~/.local/share/edgeblock (<see cref="EdgeBlock.Api.ApiSocket"/>: clients need it too).</summary>
    public static string DefaultDataDirectory() => ApiSocket.DefaultDataDirectory();

    /// <summary>The API socket clients look for by default (<see cref="EdgeBlock.Api.ApiSocket.Default"/>).</summary>
    public static string DefaultApiSocket() => ApiSocket.Default();
}

/// <summary>Namespace backends; <see cref="Volume"/> is a volume of a pool (never a default backend).</summary>
public enum BackendKind { Null, Memory, File, Volume }
