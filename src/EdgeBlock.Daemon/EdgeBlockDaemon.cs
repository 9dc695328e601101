using EdgeBlock.Daemon.Management;
using EdgeBlock.Daemon.Pools;
using EdgeBlock.Storage;
using EdgeBlock.Target;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Daemon;

/// <summary>
/// The composition root: reads the desired state (or writes the default one on first start),
/// has the engine (EdgeBlock's own target, or the kernel's with --engine kernel) serve it, and serves
/// changes through <see cref="Management"/>; on stop it closes queues and flushes every device.
/// </summary>
public sealed class EdgeBlockDaemon : IHostedService, IAsyncDisposable
{
    private readonly DaemonOptions _options;
    private readonly ILogger _logger;
    private readonly ITargetEngine _engine;
    private DaemonMetrics? _metrics;
    private int _stopped;

    public EdgeBlockDaemon(DaemonOptions options, ILoggerFactory loggers)
    {
        _options = options;
        _logger = loggers.CreateLogger("edgeblock");
        Target = new NvmeTarget(loggers.CreateLogger("edgeblock.target"));
        Buffers = new DataBufferPool(options.EffectiveMemoryBudgetBytes, Target.Limits.MaxTransferBytes);
        Pools = new PoolManager(options.DataDirectory, loggers.CreateLogger("edgeblock.pools"));
        if (options.Engine == KernelEngine.TargetEngine.Kernel) // --engine kernel: configfs instead of our listeners
            _engine = KernelTarget = new KernelEngine.KernelTarget(options.KernelConfigfsRoot, options.DataDirectory, loggers.CreateLogger("edgeblock.kernel"));
        else
            _engine = new EdgeBlockEngine(Target, options.DataDirectory, _logger, loggers.CreateLogger("edgeblock.tcp"), Pools, buffers: Buffers, busyPoll: options.BusyPoll);
        var policy = new StoragePolicy(options.DataDirectory, options.EffectiveConfigPath, options.ApiSocketPath, Pools);
        Management = new ManagementService(Target, _engine, new ConfigStore(options.EffectiveConfigPath), options.DataDirectory, _logger, Pools, policy)
        {
            ApiSocket = options.ApiSocketPath,
            Buffers = Buffers,
        };
    }

    public NvmeTarget Target { get; }
    /// <summary>The I/O data buffers of every transport, under <see cref="DaemonOptions.MemoryBudgetBytes"/>.</summary>
    public DataBufferPool Buffers { get; }
    /// <summary>The Prometheus metrics when <see cref="DaemonOptions.MetricsEndpoint"/> is set, from the end of start on.</summary>
    public DaemonMetrics? Metrics => Volatile.Read(ref _metrics);
    public ManagementService Management { get; }
    /// <summary>The pools under &lt;data dir&gt;/pools (opened at start, before namespaces; closed after them).</summary>
    public PoolManager Pools { get; }
    /// <summary>The kernel engine when running with --engine kernel; null otherwise.</summary>
    public KernelEngine.KernelTarget? KernelTarget { get; }

    /// <summary>The first listener's bound endpoint (with the real port when 0 was asked for).</summary>
    public System.Net.IPEndPoint? ListenEndPoint =>
        Management.Desired.Listeners.Select(l => _engine.Listener(l.Address)?.Bound).FirstOrDefault(ep => ep != null);

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(_options.DataDirectory);
        var store = new ConfigStore(_options.EffectiveConfigPath);
        bool persist;
        DesiredState state;
        if (store.Exists)
        {
            state = store.Load();
            persist = ApplyOverrides(state);
            _logger.LogInformation("desired state from {Path}", store.Path);
        }
        else
        {
            state = DefaultState();
            persist = true;
            _logger.LogInformation("no config at {Path}: writing the default (subsystem {Nqn}, namespace 1)", store.Path, DaemonOptions.DefaultSubsystemNqn);
        }
        Pools.OpenAll();
        persist |= Pools.AssignVolumeUuids(state);
        persist |= AssignMissingUuids(state);
        try
        {
            await Management.StartAsync(state, persist).ConfigureAwait(false);
        }
        catch
        {
            await Pools.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        // Served by DaemonHost's HTTP stack (MetricsEndpoint); filled from the target at each scrape.
        if (_options.MetricsEndpoint != null) _metrics = new DaemonMetrics(Target, Pools, Management.VhostExports, Buffers);
    }

    /// <summary>Today's `edgeblock serve` as a desired state: one listener, the default subsystem, namespace 1.</summary>
    private DesiredState DefaultState()
    {
        string size = $"{_options.DefaultSizeBytes >> 10}K";
        string backend = _options.DefaultBackend switch
        {
            BackendKind.Null => $"null:{size}",
            BackendKind.Memory => $"memory:{size}",
            _ => $"file:default.img:{size}",
        };
        BackendSpec.TryParse(backend, out var parsed, out _);
        backend = parsed.ToString();
        // The UUID that `serve` derived before configs existed, so a host sees the same disk after the upgrade.
        string identity = _options.DefaultBackend switch
        {
            BackendKind.Null => "null",
            BackendKind.Memory => "memory",
            _ => $"file:{Path.GetFullPath(Path.Combine(_options.DataDirectory, "default.img"))}",
        };
        return new DesiredState
        {
            StorageRoots = _options.StorageRoots.Count > 0 ? _options.StorageRoots.Distinct().ToList() : null,
            Listeners = [new ListenerSpec { Address = _options.Listen.ToString() }],
            Subsystems =
            [
                new SubsystemSpec
                {
                    Nqn = DaemonOptions.DefaultSubsystemNqn,
                    AllowAnyHost = _options.AllowedHosts.Count == 0,
                    Hosts = _options.AllowedHosts.Distinct().ToList(),
                    Namespaces = [new NamespaceSpec { Nsid = 1, Backend = backend, Uuid = NamespaceIdentity.For(DaemonOptions.DefaultSubsystemNqn, 1, identity) }],
                },
            ],
        };
    }

    /// <summary>Explicit serve flags win over the file (and are saved): --listen replaces the listeners, --allow-host the default subsystem's hosts, --storage-root adds roots.</summary>
    private bool ApplyOverrides(DesiredState state)
    {
        bool changed = false;
        if (_options.ListenExplicit)
        {
            string address = _options.Listen.ToString();
            if (state.Listeners.Count != 1 || state.Listeners[0].Address != address)
            {
                state.Listeners = [new ListenerSpec { Address = address }];
                changed = true;
            }
        }
        // --storage-root adds (never removes: exports under a root written by hand would stop at the next start).
        foreach (string root in _options.StorageRoots.Where(r => !(state.StorageRoots ?? []).Contains(r)))
        {
            (state.StorageRoots ??= []).Add(root);
            changed = true;
        }
        if (_options.AllowedHosts.Count > 0 && state.FindSubsystem(DaemonOptions.DefaultSubsystemNqn) is { } s)
        {
            var hosts = _options.AllowedHosts.Distinct().ToList();
            if (s.AllowAnyHost || !s.Hosts.SequenceEqual(hosts))
            {
                s.AllowAnyHost = false;
                s.Hosts = hosts;
                changed = true;
            }
        }
        return changed;
    }

    private static bool AssignMissingUuids(DesiredState state)
    {
        bool changed = false;
        foreach (var ns in state.Subsystems.Where(s => s != null).SelectMany(s => s.Namespaces ?? []).Where(n => n != null && n.Uuid == null))
        {
            ns.Uuid = Guid.NewGuid();
            changed = true;
        }
        return changed;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _stopped, 1) == 1) return;
        _logger.LogInformation("shutting down: closing queues and flushing devices");
        await _engine.ClearAsync().ConfigureAwait(false);
        await Pools.DisposeAsync().ConfigureAwait(false); // after the namespaces: each pool commits last
    }

    public async ValueTask DisposeAsync()
    {
        _metrics = null;
        await _engine.DisposeAsync().ConfigureAwait(false);
        await Pools.DisposeAsync().ConfigureAwait(false);
        Buffers.Dispose();
    }
}
