using System.Text.Json.Serialization;
using EdgeBlock.Storage.Qos;

namespace EdgeBlock.Daemon.Management;

/// <summary>
/// QoS in the desired state: limits and weights of volumes, limits of groups. Applied to every export of a volume
/// (NVMe/TCP and vhost-user) through its pool's <see cref="QosScheduler"/>; a volume's entry goes with the volume.
/// </summary>
public sealed class QosSpec
{
    public List<VolumeQosSpec> Volumes { get; set; } = [];
    public List<GroupQosSpec> Groups { get; set; } = [];

    public VolumeQosSpec? FindVolume(string key) => Volumes.FirstOrDefault(v => v?.Volume == key);

    public GroupQosSpec? FindGroup(string key) => Groups.FirstOrDefault(g => g?.Group == key);
}

/// <summary>Rate limits (null: none) and bursts (null: a tenth of a second at the rate).</summary>
public abstract class QosLimitsSpec
{
    public long? Iops { get; set; }
    public long? BytesPerSecond { get; set; }
    public long? BurstIops { get; set; }
    public long? BurstBytes { get; set; }

    public QosLimits ToLimits() => new(Iops ?? 0, BytesPerSecond ?? 0, BurstIops ?? 0, BurstBytes ?? 0);

    [JsonIgnore]
    public virtual bool IsEmpty => Iops == null && BytesPerSecond == null && BurstIops == null && BurstBytes == null;
}

public sealed class VolumeQosSpec : QosLimitsSpec
{
    /// <summary>POOL/NAME.</summary>
    public string Volume { get; set; } = "";
    /// <summary>Share of a saturated pool relative to the other volumes' (null: 1).</summary>
    public int? Weight { get; set; }

    [JsonIgnore]
    public override bool IsEmpty => base.IsEmpty && Weight == null;
}

public sealed class GroupQosSpec : QosLimitsSpec
{
    /// <summary>POOL/GROUP.</summary>
    public string Group { get; set; } = "";
}
