using EdgeBlock.Volumes;
using Contract = EdgeBlock.Api.Pools;

namespace EdgeBlock.Daemon.Pools;

/// <summary>
/// The storage layer's records in their API form (EdgeBlock.Api.Pools), at the edge where the daemon answers:
/// clients need nothing of EdgeBlock.Volumes, and the storage layer may change without changing the API.
/// </summary>
public static class PoolContracts
{
    /// <summary>A volume with its QoS in force and what it did.</summary>
    public static Contract.VolumeInfo ToContract(this VolumeInfo v, QosRegistry qos) => v.ToContract() with { Qos = qos.Describe(v.Pool, v.Name) };

    public static List<Contract.VolumeInfo> ToContract(this IEnumerable<VolumeInfo> volumes, QosRegistry qos) => volumes.Select(v => v.ToContract(qos)).ToList();

    /// <summary>A group with its QoS limits.</summary>
    public static List<Contract.GroupInfo> ToContract(this IEnumerable<GroupInfo> groups, string pool, QosRegistry qos) =>
        groups.Select(g => g.ToContract() with { Qos = qos.DescribeGroup(pool, g.Name) }).ToList();

    public static Contract.VolumeInfo ToContract(this VolumeInfo v)
    {
        VolumeFeatures features = v.Features ?? VolumeFeatures.None;
        return new(v.Pool, v.Name, v.Uuid, v.SizeBytes, v.AllocatedBytes, v.ReserveBytes, v.Group, v.IsSnapshot, v.Origin, v.Exported, v.Created,
            features.CompressionText, features.Checksum, v.LogicalBytes, v.PhysicalBytes, Ratio(v.CompressionRatio), v.ChecksumErrors, features.Encrypted, v.MapBytes,
            OriginCopy: v.OriginCopy is { } o ? new(o.Path, o.BytesTotal, o.BytesCopied, o.Copying, o.Problem) : null);
    }

    /// <summary>Two decimals, as operators read a ratio (2.37, not 2.3684210526315788).</summary>
    public static double Ratio(double ratio) => Math.Round(ratio, 2, MidpointRounding.AwayFromZero);

    public static List<Contract.VolumeInfo> ToContract(this IEnumerable<VolumeInfo> volumes) => volumes.Select(ToContract).ToList();

    public static Contract.GroupInfo ToContract(this GroupInfo g) => new(g.Name, g.QuotaBytes, g.UsedBytes, g.VolumeCount);

    public static List<Contract.GroupInfo> ToContract(this IEnumerable<GroupInfo> groups) => groups.Select(ToContract).ToList();

    public static Contract.PoolCheckReport ToContract(this PoolCheckReport r) =>
        new(r.Problems, r.Volumes, r.MappedExtents, r.AllocatedExtents, r.FreeExtents);

    public static Contract.PoolDriveInfo ToContract(this PoolDriveInfo d) =>
        new(d.Index, d.Path, d.Id, d.SizeBytes, d.AllocatedBytes, d.FreeBytes);

    public static Contract.PoolCounters ToContract(this PoolCounters c) =>
        new(c.Commits, c.MetadataBytesWritten, c.CapacityExceeded, c.CopyOnWrites, c.ChecksumErrors);

    public static Contract.ScrubError ToContract(this ScrubError e) => new(e.Volume, e.FirstLba, e.LastLba, e.What);

    /// <summary>`pool check --offline`: checks a pool no daemon has open (the CLI runs it in-process) and answers as the API would.</summary>
    public static async Task<Contract.PoolCheckReport> CheckOfflineAsync(string dataDirectory, string pool) =>
        (await Pool.CheckOfflineAsync(Path.Combine(dataDirectory, "pools", pool)).ConfigureAwait(false)).ToContract();
}
