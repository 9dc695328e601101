using EdgeBlock.Storage;
using EdgeBlock.Target;
using EdgeBlock.Transports.Tcp;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Daemon;

/// <summary>
/// The composition root: builds the target, the default subsystem and its namespace, and the
/// NVMe/TCP listener; on stop it closes queues and flushes every device.
/// </summary>
public sealed class EdgeBlockDaemon : IHostedService, IAsyncDisposable
{
    private readonly DaemonOptions _options;
    private readonly ILogger _logger;
    private readonly List<IBlockDevice> _devices = [];
    private TcpTransport? _transport;
    private DaemonMetrics? _metrics;

    public EdgeBlockDaemon(DaemonOptions options, ILoggerFactory loggers)
    {
        _options = options;
        _logger = loggers.CreateLogger("edgeblock");
        Target = new NvmeTarget(loggers.CreateLogger("edgeblock.target"));
        TransportLogger = loggers.CreateLogger("edgeblock.tcp");
    }

    public NvmeTarget Target { get; }
    private ILogger TransportLogger { get; }
    public System.Net.IPEndPoint? ListenEndPoint => _transport?.LocalEndPoint;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(_options.DataDirectory);
        var subsystem = new Subsystem(DaemonOptions.DefaultSubsystemNqn, allowAnyHost: _options.AllowedHosts.Count == 0);
        foreach (string host in _options.AllowedHosts) subsystem.AllowHost(host);
        var (device, identity) = OpenDefaultDevice();
        _devices.Add(device);
        subsystem.AddNamespace(new Namespace(1, device, NamespaceIdentity.For(subsystem.NqnName, 1, identity)));
        Target.AddSubsystem(subsystem);

        _transport = new TcpTransport(Target, TransportLogger);
        _transport.Start(_options.Listen);
        if (_options.MetricsEndpoint is { } metricsEndpoint)
        {
            _metrics = new DaemonMetrics(Target);
            _metrics.Start(metricsEndpoint);
            _logger.LogInformation("Prometheus metrics on http://{Endpoint}/metrics", metricsEndpoint);
        }
        _logger.LogInformation("subsystem {Nqn}: namespace 1 = {Backend} ({Size}){Hosts}", subsystem.NqnName, identity,
            Sizes.Format(device.BlockCount * device.BlockSize),
            _options.AllowedHosts.Count == 0 ? ", any host may connect" : $", hosts: {string.Join(", ", _options.AllowedHosts)}");
        return Task.CompletedTask;
    }

    private (IBlockDevice Device, string Identity) OpenDefaultDevice()
    {
        long size = _options.DefaultSizeBytes;
        switch (_options.DefaultBackend)
        {
            case BackendKind.Null:
                return (new NullBlockDevice(size), "null");
            case BackendKind.Memory:
                return (new MemoryBlockDevice(size), "memory");
            default:
                string path = Path.Combine(_options.DataDirectory, "default.img");
                return (FileBlockDevice.Open(path, size), $"file:{Path.GetFullPath(path)}");
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _logger.LogInformation("shutting down: closing queues and flushing devices");
        if (_transport != null) await _transport.DisposeAsync().ConfigureAwait(false);
        _transport = null;
        foreach (var device in _devices)
        {
            var status = await device.FlushAsync().ConfigureAwait(false);
            if (status != BlockStatus.Success) _logger.LogError("flush on shutdown failed: {Status}", status);
        }
    }

    public async ValueTask DisposeAsync()
    {
        _metrics?.Dispose();
        if (_transport != null) await _transport.DisposeAsync().ConfigureAwait(false);
        foreach (var device in _devices) await device.DisposeAsync().ConfigureAwait(false);
        _devices.Clear();
    }
}
