using EdgeBlock.Daemon.Pools;
using EdgeBlock.Target;
using Prometheus;

namespace EdgeBlock.Daemon;

/// <summary>
/// Prometheus metrics (prometheus-net): process CPU and memory come from its default collectors;
/// target counters are read from the target just before each scrape, so the I/O path pays nothing extra.
/// Served by the daemon's HTTP stack (<see cref="MetricsEndpoint"/>).
/// </summary>
public sealed class DaemonMetrics
{
    private readonly NvmeTarget _target;
    private readonly CollectorRegistry _registry = Metrics.NewCustomRegistry();
    private readonly Counter _ops;
    private readonly Counter _bytes;
    private readonly Counter _errors;
    private readonly Counter _errorsByStatus;
    private readonly Histogram _latency;
    private readonly Gauge _controllers;
    private readonly Gauge _queues;
    private readonly Gauge _controllerQueues;
    // What the last refresh exported, so series of namespaces and controllers that went away are removed
    // (a namespace re-added under the same NSID starts again from zero instead of hiding behind the old counts).
    private readonly object _refreshGate = new();
    private readonly Dictionary<(string Nqn, uint Nsid), ExportedNamespace> _exported = [];
    private readonly Dictionary<string[], bool> _controllerSeries = new(LabelsComparer.Instance);
    private readonly PoolManager? _pools;
    private readonly Gauge _poolSize;
    private readonly Gauge _poolAllocated;
    private readonly Gauge _poolReserved;
    private readonly Gauge _poolFree;
    private readonly Counter _poolCapacityExceeded;
    private readonly Gauge _scrubRunning;
    private readonly Gauge _scrubChunks;
    private readonly Gauge _scrubErrors;
    private readonly VhostMetrics? _vhost;
    private readonly VolumeMetrics? _volumes;
    private readonly QosMetrics? _qos;

    public DaemonMetrics(NvmeTarget target, PoolManager? pools = null, Func<IReadOnlyList<VhostInfo>>? vhostExports = null)
    {
        _target = target;
        _pools = pools;
        var factory = Metrics.WithCustomRegistry(_registry);
        if (vhostExports != null) _vhost = new VhostMetrics(factory, vhostExports);
        if (pools != null) _volumes = new VolumeMetrics(factory, () => pools.ListVolumes(null));
        if (pools != null) _qos = new QosMetrics(factory, pools.Qos);
        DotNetStats.Register(_registry); // process_cpu_seconds_total, process_working_set_bytes, GC figures
        _ops = factory.CreateCounter("edgeblock_namespace_ops_total", "Completed read/write commands per namespace", "subsystem", "nsid", "op");
        _bytes = factory.CreateCounter("edgeblock_namespace_bytes_total", "Bytes read/written per namespace", "subsystem", "nsid", "op");
        _errors = factory.CreateCounter("edgeblock_namespace_errors_total", "Commands on the namespace that completed with an error status", "subsystem", "nsid");
        _errorsByStatus = factory.CreateCounter("edgeblock_namespace_errors_by_status_total",
            "Commands on the namespace that completed with an error, by NVMe status (SCT, SC and its name)", "subsystem", "nsid", "sct", "sc", "status");
        _latency = factory.CreateHistogram("edgeblock_namespace_latency_seconds",
            "Command latency from arrival to completion, per namespace and kind (read, write, other: flush, write zeroes, deallocate, compare)",
            ["subsystem", "nsid", "op"],
            new HistogramConfiguration { Buckets = Enumerable.Range(0, LatencyHistogram.BucketCount).Select(LatencyHistogram.UpperBoundSeconds).ToArray() });
        _controllers = factory.CreateGauge("edgeblock_controllers", "Connected controllers per subsystem", "subsystem");
        _queues = factory.CreateGauge("edgeblock_queues", "Connected queues (admin + I/O) per subsystem", "subsystem");
        _controllerQueues = factory.CreateGauge("edgeblock_controller_queues", "Connected queues (admin + I/O) per controller", "subsystem", "cntlid", "host");
        _poolSize = factory.CreateGauge("edgeblock_pool_size_bytes", "Data capacity of the pool's drives", "pool");
        _poolAllocated = factory.CreateGauge("edgeblock_pool_allocated_bytes", "Allocated space (extents some volume uses)", "pool");
        _poolReserved = factory.CreateGauge("edgeblock_pool_reserved_bytes", "Space reserved for volumes and not yet allocated", "pool");
        _poolFree = factory.CreateGauge("edgeblock_pool_free_bytes", "Space neither allocated nor reserved", "pool");
        _poolCapacityExceeded = factory.CreateCounter("edgeblock_pool_capacity_exceeded_total",
            "Writes refused with Capacity Exceeded (quota, or no space beyond others' reservations)", "pool");
        // Gauges, not counters: a new scrub starts again from zero.
        _scrubRunning = factory.CreateGauge("edgeblock_pool_scrub_running", "1 while a scrub of the pool runs", "pool");
        _scrubChunks = factory.CreateGauge("edgeblock_pool_scrub_chunks_checked", "Chunks the current (or last) scrub of the pool has checked", "pool");
        _scrubErrors = factory.CreateGauge("edgeblock_pool_scrub_errors", "Bad chunks the current (or last) scrub of the pool has found", "pool");
        _registry.AddBeforeCollectCallback(Refresh);
    }

    /// <summary>Copies the target's counters into the metrics; called by the registry before each scrape.</summary>
    public void Refresh()
    {
        lock (_refreshGate)
        {
            RefreshTarget();
            _vhost?.Refresh();
            _volumes?.Refresh();
            _qos?.Refresh();
        }
        foreach (var pool in _pools?.Infos() ?? [])
        {
            _poolSize.WithLabels(pool.Name).Set(pool.SizeBytes);
            _poolAllocated.WithLabels(pool.Name).Set(pool.AllocatedBytes);
            _poolReserved.WithLabels(pool.Name).Set(pool.ReservedBytes);
            _poolFree.WithLabels(pool.Name).Set(pool.FreeBytes);
            _poolCapacityExceeded.WithLabels(pool.Name).IncTo(pool.Counters.CapacityExceeded);
        }
        foreach (var (pool, running, chunks, errors) in _pools?.ScrubGauges() ?? [])
        {
            _scrubRunning.WithLabels(pool).Set(running ? 1 : 0);
            _scrubChunks.WithLabels(pool).Set(chunks);
            _scrubErrors.WithLabels(pool).Set(errors);
        }
    }

    private void RefreshTarget()
    {
        var seen = new HashSet<(string, uint)>();
        var controllerSeries = new List<string[]>();
        foreach (var subsystem in _target.Subsystems)
        {
            string nqn = subsystem.NqnName;
            foreach (var ns in subsystem.Namespaces.Values)
            {
                string nsid = ns.Nsid.ToString(System.Globalization.CultureInfo.InvariantCulture);
                seen.Add((nqn, ns.Nsid));
                if (!_exported.TryGetValue((nqn, ns.Nsid), out var exported) || exported.Namespace != ns)
                {
                    if (exported != null) RemoveNamespaceSeries(nqn, nsid, exported);
                    _exported[(nqn, ns.Nsid)] = exported = new ExportedNamespace(ns);
                }
                var c = ns.Counters;
                _ops.WithLabels(nqn, nsid, "read").IncTo(Interlocked.Read(ref c.ReadCommands));
                _ops.WithLabels(nqn, nsid, "write").IncTo(Interlocked.Read(ref c.WriteCommands));
                _ops.WithLabels(nqn, nsid, "other").IncTo(Interlocked.Read(ref c.OtherCommands));
                _bytes.WithLabels(nqn, nsid, "read").IncTo(Interlocked.Read(ref c.BytesRead));
                _bytes.WithLabels(nqn, nsid, "write").IncTo(Interlocked.Read(ref c.BytesWritten));
                _errors.WithLabels(nqn, nsid).IncTo(Interlocked.Read(ref c.Errors));
                foreach (var (sct, sc, count) in c.ErrorsByStatus.Snapshot())
                {
                    string[] labels = [nqn, nsid, StatusNames.Hex((byte)sct, 1), StatusNames.Hex(sc, 2), StatusNames.Of(sct, sc)];
                    exported.StatusLabels.Add(labels);
                    _errorsByStatus.WithLabels(labels).IncTo(count);
                }
                FeedLatency(_latency.WithLabels(nqn, nsid, "read"), c.ReadLatency.Snapshot(), ref exported.Read);
                FeedLatency(_latency.WithLabels(nqn, nsid, "write"), c.WriteLatency.Snapshot(), ref exported.Write);
                FeedLatency(_latency.WithLabels(nqn, nsid, "other"), c.OtherLatency.Snapshot(), ref exported.Other);
            }
            var controllers = subsystem.Controllers;
            _controllers.WithLabels(nqn).Set(controllers.Count);
            _queues.WithLabels(nqn).Set(controllers.Sum(ctrl => ctrl.Queues.Count));
            foreach (var ctrl in controllers)
            {
                string[] labels = [nqn, ctrl.Cntlid.ToString(System.Globalization.CultureInfo.InvariantCulture), ctrl.HostNqn];
                controllerSeries.Add(labels);
                _controllerQueues.WithLabels(labels).Set(ctrl.Queues.Count);
            }
        }
        foreach (var gone in _exported.Where(e => !seen.Contains(e.Key)).ToList())
        {
            RemoveNamespaceSeries(gone.Key.Nqn, gone.Key.Nsid.ToString(System.Globalization.CultureInfo.InvariantCulture), gone.Value);
            _exported.Remove(gone.Key);
        }
        var current = controllerSeries.ToHashSet(LabelsComparer.Instance);
        foreach (var labels in _controllerSeries.Keys.Where(l => !current.Contains(l)).ToList())
        {
            _controllerQueues.RemoveLabelled(labels);
            _controllerSeries.Remove(labels);
        }
        foreach (var labels in controllerSeries) _controllerSeries[labels] = true;
    }

    private void RemoveNamespaceSeries(string nqn, string nsid, ExportedNamespace exported)
    {
        foreach (string op in (string[])["read", "write", "other"])
        {
            _ops.RemoveLabelled(nqn, nsid, op);
            _latency.RemoveLabelled(nqn, nsid, op);
        }
        _bytes.RemoveLabelled(nqn, nsid, "read");
        _bytes.RemoveLabelled(nqn, nsid, "write");
        _errors.RemoveLabelled(nqn, nsid);
        foreach (var labels in exported.StatusLabels) _errorsByStatus.RemoveLabelled(labels);
    }

    /// <summary>
    /// Adds what the target's histogram counted since the last scrape to the Prometheus histogram (same bucket
    /// bounds). Each bucket's new observations are given one value inside that bucket, chosen so that together
    /// they add up to the exact latency sum the target kept: buckets and _sum both match the target's.
    /// </summary>
    private static void FeedLatency(Histogram.Child histogram, LatencySnapshot now, ref LatencySnapshot? last)
    {
        double min = 0, max = 0;
        var delta = new long[now.Counts.Length];
        for (int b = 0; b < delta.Length; b++)
        {
            delta[b] = now.Counts[b] - (last?.Counts[b] ?? 0);
            if (delta[b] <= 0) continue;
            min += delta[b] * Lower(b);
            max += delta[b] * LatencyHistogram.UpperBoundSeconds(b);
        }
        double sum = now.SumSeconds - (last?.SumSeconds ?? 0);
        double t = max > min ? Math.Clamp((sum - min) / (max - min), 0, 1) : 1;
        for (int b = 0; b < delta.Length; b++)
        {
            if (delta[b] <= 0) continue;
            double lower = Lower(b), upper = LatencyHistogram.UpperBoundSeconds(b);
            double value = Math.Min(upper, lower + t * (upper - lower));
            if (b > 0 && value <= lower) value = Math.BitIncrement(lower); // bucket b is (lower, upper]
            histogram.Observe(value, delta[b]);
        }
        last = now;

        static double Lower(int b) => b == 0 ? 0 : LatencyHistogram.UpperBoundSeconds(b - 1);
    }

    private sealed class ExportedNamespace(Namespace ns)
    {
        public Namespace Namespace { get; } = ns;
        public LatencySnapshot? Read, Write, Other;
        public HashSet<string[]> StatusLabels { get; } = new(LabelsComparer.Instance);
    }

    private sealed class LabelsComparer : IEqualityComparer<string[]>
    {
        public static readonly LabelsComparer Instance = new();
        public bool Equals(string[]? x, string[]? y) => x != null && y != null && x.AsSpan().SequenceEqual(y);
        public int GetHashCode(string[] labels)
        {
            var hash = new HashCode();
            foreach (string l in labels) hash.Add(l);
            return hash.ToHashCode();
        }
    }

    /// <summary>The media type of <see cref="ExportAsync"/>: Prometheus text exposition format 0.0.4.</summary>
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    /// <summary>Refreshes the metrics from the target and writes them in the Prometheus text format.</summary>
    public Task ExportAsync(Stream destination, CancellationToken cancellationToken = default) =>
        _registry.CollectAndExportAsTextAsync(destination, cancellationToken);

    /// <summary>The Prometheus text exposition, for tests.</summary>
    public async Task<string> ScrapeAsync()
    {
        using var stream = new MemoryStream();
        await ExportAsync(stream).ConfigureAwait(false);
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }
}
