using System.Net;
using EdgeBlock.Daemon.Pools;
using EdgeBlock.Target;
using Prometheus;

namespace EdgeBlock.Daemon;

/// <summary>
/// Prometheus metrics (prometheus-net): process CPU and memory come from its default collectors;
/// target counters are read from the target just before each scrape, so the I/O path pays nothing extra.
/// </summary>
public sealed class DaemonMetrics : IDisposable
{
    private readonly NvmeTarget _target;
    private readonly CollectorRegistry _registry = Metrics.NewCustomRegistry();
    private readonly Counter _ops;
    private readonly Counter _bytes;
    private readonly Counter _errors;
    private readonly Gauge _controllers;
    private readonly Gauge _queues;
    private readonly PoolManager? _pools;
    private readonly Gauge _poolSize;
    private readonly Gauge _poolAllocated;
    private readonly Gauge _poolReserved;
    private readonly Gauge _poolFree;
    private readonly Counter _poolCapacityExceeded;
    private MetricServer? _server;

    public DaemonMetrics(NvmeTarget target, PoolManager? pools = null)
    {
        _target = target;
        _pools = pools;
        var factory = Metrics.WithCustomRegistry(_registry);
        DotNetStats.Register(_registry); // process_cpu_seconds_total, process_working_set_bytes, GC figures
        _ops = factory.CreateCounter("edgeblock_namespace_ops_total", "Completed read/write commands per namespace", "subsystem", "nsid", "op");
        _bytes = factory.CreateCounter("edgeblock_namespace_bytes_total", "Bytes read/written per namespace", "subsystem", "nsid", "op");
        _errors = factory.CreateCounter("edgeblock_namespace_errors_total", "Commands on the namespace that completed with an error status", "subsystem", "nsid");
        _controllers = factory.CreateGauge("edgeblock_controllers", "Connected controllers per subsystem", "subsystem");
        _queues = factory.CreateGauge("edgeblock_queues", "Connected queues (admin + I/O) per subsystem", "subsystem");
        _poolSize = factory.CreateGauge("edgeblock_pool_size_bytes", "Data capacity of the pool's drives", "pool");
        _poolAllocated = factory.CreateGauge("edgeblock_pool_allocated_bytes", "Allocated space (extents some volume uses)", "pool");
        _poolReserved = factory.CreateGauge("edgeblock_pool_reserved_bytes", "Space reserved for volumes and not yet allocated", "pool");
        _poolFree = factory.CreateGauge("edgeblock_pool_free_bytes", "Space neither allocated nor reserved", "pool");
        _poolCapacityExceeded = factory.CreateCounter("edgeblock_pool_capacity_exceeded_total",
            "Writes refused with Capacity Exceeded (quota, or no space beyond others' reservations)", "pool");
        _registry.AddBeforeCollectCallback(Refresh);
    }

    /// <summary>Copies the target's counters into the metrics; called by the registry before each scrape.</summary>
    public void Refresh()
    {
        foreach (var subsystem in _target.Subsystems)
        {
            string nqn = subsystem.NqnName;
            foreach (var ns in subsystem.Namespaces.Values)
            {
                string nsid = ns.Nsid.ToString(System.Globalization.CultureInfo.InvariantCulture);
                var c = ns.Counters;
                _ops.WithLabels(nqn, nsid, "read").IncTo(Interlocked.Read(ref c.ReadCommands));
                _ops.WithLabels(nqn, nsid, "write").IncTo(Interlocked.Read(ref c.WriteCommands));
                _bytes.WithLabels(nqn, nsid, "read").IncTo(Interlocked.Read(ref c.BytesRead));
                _bytes.WithLabels(nqn, nsid, "write").IncTo(Interlocked.Read(ref c.BytesWritten));
                _errors.WithLabels(nqn, nsid).IncTo(Interlocked.Read(ref c.Errors));
            }
            var controllers = subsystem.Controllers;
            _controllers.WithLabels(nqn).Set(controllers.Count);
            _queues.WithLabels(nqn).Set(controllers.Sum(ctrl => ctrl.Queues.Count));
        }
        foreach (var pool in _pools?.Infos() ?? [])
        {
            _poolSize.WithLabels(pool.Name).Set(pool.SizeBytes);
            _poolAllocated.WithLabels(pool.Name).Set(pool.AllocatedBytes);
            _poolReserved.WithLabels(pool.Name).Set(pool.ReservedBytes);
            _poolFree.WithLabels(pool.Name).Set(pool.FreeBytes);
            _poolCapacityExceeded.WithLabels(pool.Name).IncTo(pool.Counters.CapacityExceeded);
        }
    }

    /// <summary>Serves /metrics on the given address (HttpListener based, no ASP.NET needed).</summary>
    public void Start(IPEndPoint endpoint)
    {
        string host = endpoint.Address.Equals(IPAddress.Any) ? "+" : endpoint.Address.ToString();
        _server = new MetricServer(host, endpoint.Port, "metrics/", _registry);
        try
        {
            _server.Start();
        }
        catch (Exception ex) when (ex is HttpListenerException or InvalidOperationException)
        {
            throw new InvalidOperationException($"cannot serve metrics on {endpoint}: {ex.Message}", ex);
        }
    }

    /// <summary>The Prometheus text exposition, for tests and the API.</summary>
    public async Task<string> ScrapeAsync()
    {
        using var stream = new MemoryStream();
        await _registry.CollectAndExportAsTextAsync(stream).ConfigureAwait(false);
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    public void Dispose() => _server?.Dispose();
}
