using EdgeBlock.Daemon.Pools;
using EdgeBlock.Storage.Qos;
using Prometheus;

namespace EdgeBlock.Daemon;

/// <summary>
/// Prometheus series of each exported volume's QoS, by pool and volume: the seconds during which some of its I/O
/// waited for a limit or its weighted turn, and how many I/Os wait now. A deleted volume loses its series.
/// </summary>
internal sealed class QosMetrics
{
    private readonly QosRegistry _qos;
    private readonly Counter _throttled;
    private readonly Gauge _queueDepth;
    private readonly HashSet<(string Pool, string Volume)> _shown = [];

    public QosMetrics(MetricFactory factory, QosRegistry qos)
    {
        _qos = qos;
        _throttled = factory.CreateCounter("edgeblock_volume_throttled_seconds_total",
            "Seconds during which some I/O of the volume waited for its QoS limits (or its group's) or its weighted turn", "pool", "volume");
        _queueDepth = factory.CreateGauge("edgeblock_volume_queue_depth",
            "I/Os of the volume waiting for their QoS turn now (limit, group limit or weighted share)", "pool", "volume");
    }

    public void Refresh()
    {
        var seen = new HashSet<(string, string)>();
        foreach ((string pool, string volume, QosFlow flow) in _qos.Flows())
        {
            seen.Add((pool, volume));
            _throttled.WithLabels(pool, volume).IncTo(flow.ThrottledSeconds);
            _queueDepth.WithLabels(pool, volume).Set(flow.QueueDepth);
        }
        foreach (var gone in _shown.Where(k => !seen.Contains(k)).ToList())
        {
            _throttled.RemoveLabelled(gone.Pool, gone.Volume);
            _queueDepth.RemoveLabelled(gone.Pool, gone.Volume);
            _shown.Remove(gone);
        }
        _shown.UnionWith(seen);
    }
}
