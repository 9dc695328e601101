using EdgeBlock.Daemon.Management;
using EdgeBlock.Storage.Qos;
using EdgeBlock.Volumes;

namespace EdgeBlock.Daemon.Pools;

/// <summary>
/// The QoS in force: one <see cref="QosScheduler"/> per pool, a flow per exported volume (made when the volume is first
/// exported, kept while the volume lives so its counters do not restart), a group per group named. <see cref="Apply"/>
/// sets them all from the desired state's <see cref="QosSpec"/>; what it does not name has no limit and no weight.
/// </summary>
public sealed class QosRegistry(TimeProvider time) : IDisposable
{
    private readonly object _lock = new();
    private readonly Dictionary<string, PoolQos> _pools = new(StringComparer.Ordinal);
    private QosSpec _spec = new();

    private sealed class PoolQos(TimeProvider time)
    {
        public readonly QosScheduler Scheduler = new(time);
        public readonly Dictionary<string, QosFlow> Flows = new(StringComparer.Ordinal);
        public readonly Dictionary<string, QosGroup> Groups = new(StringComparer.Ordinal);

        public QosGroup Group(string name)
        {
            if (!Groups.TryGetValue(name, out QosGroup? g)) Groups[name] = g = Scheduler.CreateGroup();
            return g;
        }
    }

    /// <summary>The flow every export of <paramref name="pool"/>/<paramref name="volume"/> shares, with the QoS in force.</summary>
    public QosFlow Flow(string pool, string volume, string? group)
    {
        lock (_lock)
        {
            PoolQos p = Pool(pool);
            if (!p.Flows.TryGetValue(volume, out QosFlow? flow))
            {
                p.Flows[volume] = flow = p.Scheduler.CreateFlow(group == null ? null : p.Group(group));
                SetFlow(p, $"{pool}/{volume}", flow);
            }
            return flow;
        }
    }

    /// <summary>Puts a desired state's QoS in force (at start and after every change).</summary>
    public void Apply(QosSpec? spec)
    {
        lock (_lock)
        {
            _spec = spec ?? new QosSpec();
            foreach (var (name, p) in _pools)
            {
                foreach (var (group, g) in p.Groups) p.Scheduler.Set(g, _spec.FindGroup($"{name}/{group}")?.ToLimits() ?? QosLimits.None);
                foreach (var (volume, flow) in p.Flows) SetFlow(p, $"{name}/{volume}", flow);
            }
            foreach (var g in _spec.Groups)
            {
                if (!PoolNames.TrySplit(g.Group, out string pool, out string group)) continue;
                PoolQos p = Pool(pool);
                p.Scheduler.Set(p.Group(group), g.ToLimits());
            }
        }
    }

    /// <summary>A deleted volume's flow (its I/O is over: its exports closed before the delete).</summary>
    public void Forget(string pool, string volume)
    {
        lock (_lock)
        {
            if (!_pools.TryGetValue(pool, out PoolQos? p) || !p.Flows.Remove(volume, out QosFlow? flow)) return;
            p.Scheduler.RemoveFlow(flow);
        }
    }

    /// <summary>The flow of a volume that was exported since the daemon started; null otherwise.</summary>
    public QosFlow? Find(string pool, string volume)
    {
        lock (_lock) return _pools.TryGetValue(pool, out PoolQos? p) ? p.Flows.GetValueOrDefault(volume) : null;
    }

    /// <summary>The flows of every exported volume (metrics).</summary>
    public IReadOnlyList<(string Pool, string Volume, QosFlow Flow)> Flows()
    {
        lock (_lock) return _pools.SelectMany(p => p.Value.Flows.Select(f => (p.Key, f.Key, f.Value))).ToList();
    }

    /// <summary>A volume's QoS in force and what it did; null when it has none and never waited.</summary>
    public Api.Pools.QosInfo? Describe(string pool, string volume)
    {
        lock (_lock)
        {
            VolumeQosSpec? spec = _spec.FindVolume($"{pool}/{volume}");
            QosFlow? flow = _pools.TryGetValue(pool, out PoolQos? p) ? p.Flows.GetValueOrDefault(volume) : null;
            if (spec == null && (flow == null || flow.ThrottledSeconds == 0)) return null;
            return new Api.Pools.QosInfo(spec?.Iops, spec?.BytesPerSecond, spec?.BurstIops, spec?.BurstBytes, spec?.Weight,
                Math.Round(flow?.ThrottledSeconds ?? 0, 3), flow?.QueueDepth ?? 0);
        }
    }

    /// <summary>A group's QoS in force; null when it has none.</summary>
    public Api.Pools.QosInfo? DescribeGroup(string pool, string group)
    {
        lock (_lock)
        {
            return _spec.FindGroup($"{pool}/{group}") is { } spec ? new(spec.Iops, spec.BytesPerSecond, spec.BurstIops, spec.BurstBytes) : null;
        }
    }

    private PoolQos Pool(string name)
    {
        if (!_pools.TryGetValue(name, out PoolQos? p)) _pools[name] = p = new PoolQos(time);
        return p;
    }

    private void SetFlow(PoolQos p, string key, QosFlow flow)
    {
        VolumeQosSpec? v = _spec.FindVolume(key);
        p.Scheduler.Set(flow, v?.ToLimits() ?? QosLimits.None, v?.Weight ?? 0);
    }

    public void Dispose()
    {
        lock (_lock)
        {
            foreach (PoolQos p in _pools.Values) p.Scheduler.Dispose();
            _pools.Clear();
        }
    }
}
