namespace EdgeBlock.Api.Pools;

// QoS of volumes and groups (kept in the desired state, edgeblock.json):
// PUT /v1/pools/{pool}/volumes/{name}/qos   DELETE /v1/pools/{pool}/volumes/{name}/qos
// PUT /v1/pools/{pool}/groups/{group}/qos   DELETE /v1/pools/{pool}/groups/{group}/qos
// Values are strings as operators write them, parsed by the daemon so a bad one is a refusal naming the field.

/// <summary>
/// Changes a volume's QoS: a field left out (null) stays as it is; "0" or "none" removes it. Iops and BurstIops are
/// I/Os (per second; the burst is what a full bucket holds); Bandwidth is a size per second ("100M", "100M/s") and
/// BurstBandwidth a size; Weight (1-10000) is the volume's share of its pool when the pool is saturated.
/// </summary>
public sealed record SetVolumeQosRequest(string? Iops = null, string? Bandwidth = null, string? BurstIops = null, string? BurstBandwidth = null,
    string? Weight = null);

/// <summary>Changes a group's QoS (the sum of its volumes' I/O); fields as in <see cref="SetVolumeQosRequest"/>, without a weight.</summary>
public sealed record SetGroupQosRequest(string? Iops = null, string? Bandwidth = null, string? BurstIops = null, string? BurstBandwidth = null);

/// <summary>
/// QoS of a volume or group: limits (null: none), bursts (null: a tenth of a second at the rate), weight (null: not
/// set, counts as 1). For a volume also what it did: ThrottledSeconds, the time during which some of its I/O waited for
/// a limit or its turn; QueueDepth, its I/Os waiting now.
/// </summary>
public sealed record QosInfo(long? Iops, long? BytesPerSecond, long? BurstIops, long? BurstBytes, int? Weight = null,
    double ThrottledSeconds = 0, int QueueDepth = 0);
