using EdgeBlock.Volumes;
using Prometheus;

namespace EdgeBlock.Daemon;

/// <summary>
/// Prometheus series of every volume and snapshot of the open pools, by pool and volume: logical and physical
/// bytes, the memory of its map, checksum errors, an attached image's copy (while there is one). A volume deleted loses its series; one created again under the same name (another
/// UUID), or whose count went down, starts its counter again from zero, so a counter never goes backwards.
/// </summary>
internal sealed class VolumeMetrics
{
    private readonly Func<IReadOnlyList<VolumeInfo>> _volumes;
    private readonly Gauge _logical;
    private readonly Gauge _physical;
    private readonly Gauge _map;
    private readonly Counter _checksumErrors;
    private readonly Gauge _originTotal;
    private readonly Gauge _originCopied;
    private readonly Dictionary<(string Pool, string Volume), (Guid Uuid, long ChecksumErrors)> _last = [];

    public VolumeMetrics(MetricFactory factory, Func<IReadOnlyList<VolumeInfo>> volumes)
    {
        _volumes = volumes;
        _logical = factory.CreateGauge("edgeblock_volume_logical_bytes", "Bytes written to the volume (before compression)", "pool", "volume");
        _physical = factory.CreateGauge("edgeblock_volume_physical_bytes",
            "Bytes the volume takes on the pool's drives (after compression; space shared with snapshots counts in each)", "pool", "volume");
        _map = factory.CreateGauge("edgeblock_volume_map_bytes",
            "Daemon memory the volume's map takes (grows with what is written, not with the volume's size)", "pool", "volume");
        _checksumErrors = factory.CreateCounter("edgeblock_volume_checksum_errors_total",
            "Reads of the volume whose stored data did not match its checksum (each failed with Unrecovered Read Error)", "pool", "volume");
        _originTotal = factory.CreateGauge("edgeblock_volume_origin_bytes",
            "Virtual size of the image attached to the volume (image attach), while its background copy is not done", "pool", "volume");
        _originCopied = factory.CreateGauge("edgeblock_volume_origin_copied_bytes",
            "Bytes of the attached image the volume holds itself (copied, written or discarded); the image is dropped when it reaches the total", "pool", "volume");
    }

    public void Refresh()
    {
        var seen = new HashSet<(string, string)>();
        foreach (VolumeInfo v in _volumes())
        {
            var key = (v.Pool, v.Name);
            seen.Add(key);
            if (_last.TryGetValue(key, out var last) && (last.Uuid != v.Uuid || v.ChecksumErrors < last.ChecksumErrors)) Remove(key);
            _last[key] = (v.Uuid, v.ChecksumErrors);
            _logical.WithLabels(v.Pool, v.Name).Set(v.LogicalBytes);
            _physical.WithLabels(v.Pool, v.Name).Set(v.PhysicalBytes);
            _map.WithLabels(v.Pool, v.Name).Set(v.MapBytes);
            _checksumErrors.WithLabels(v.Pool, v.Name).IncTo(v.ChecksumErrors);
            if (v.OriginCopy is { } origin)
            {
                _originTotal.WithLabels(v.Pool, v.Name).Set(origin.BytesTotal);
                _originCopied.WithLabels(v.Pool, v.Name).Set(origin.BytesCopied);
            }
            else
            {
                RemoveOrigin(key);
            }
        }
        foreach (var gone in _last.Keys.Where(k => !seen.Contains(k)).ToList())
        {
            Remove(gone);
            _last.Remove(gone);
        }
    }

    private void Remove((string Pool, string Volume) key)
    {
        _logical.RemoveLabelled(key.Pool, key.Volume);
        _physical.RemoveLabelled(key.Pool, key.Volume);
        _map.RemoveLabelled(key.Pool, key.Volume);
        _checksumErrors.RemoveLabelled(key.Pool, key.Volume);
        RemoveOrigin(key);
    }

    private void RemoveOrigin((string Pool, string Volume) key)
    {
        _originTotal.RemoveLabelled(key.Pool, key.Volume);
        _originCopied.RemoveLabelled(key.Pool, key.Volume);
    }
}
