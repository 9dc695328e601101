namespace EdgeBlock.Volumes;

/// <summary>A pool as `pool show` reports it. Sizes in bytes.</summary>
public sealed record PoolInfo(
    string Name, Guid Id, int ExtentSize, long SizeBytes, long AllocatedBytes, long ReservedBytes, long FreeBytes,
    long FreeingBytes, int VolumeCount, IReadOnlyList<PoolDriveInfo> Drives, PoolCounters Counters,
    long LogicalBytes = 0, long PhysicalBytes = 0)
{
    /// <summary>Logical bytes written per physical byte stored by the pool's volumes (1 when nothing is stored).</summary>
    public double CompressionRatio => PhysicalBytes > 0 ? (double)LogicalBytes / PhysicalBytes : 1.0;
}

public sealed record PoolDriveInfo(int Index, string Path, Guid Id, long SizeBytes, long AllocatedBytes, long FreeBytes);

/// <summary>A volume or snapshot as `volume show` reports it. MapBytes: the daemon memory its map takes; OriginCopy: an attached origin's copy.</summary>
public sealed record VolumeInfo(
    string Pool, string Name, Guid Uuid, long SizeBytes, long AllocatedBytes, long ReserveBytes, string? Group,
    bool IsSnapshot, string? Origin, bool Exported, DateTimeOffset Created,
    VolumeFeatures? Features = null, long LogicalBytes = 0, long PhysicalBytes = 0, long ChecksumErrors = 0, long MapBytes = 0,
    OriginCopyInfo? OriginCopy = null)
{
    /// <summary>Logical bytes written per physical byte stored (1 when nothing is stored).</summary>
    public double CompressionRatio => PhysicalBytes > 0 ? (double)LogicalBytes / PhysicalBytes : 1.0;
}

public sealed record GroupInfo(string Name, long? QuotaBytes, long UsedBytes, int VolumeCount);

/// <summary>Running totals since the pool was opened.</summary>
public sealed record PoolCounters(long Commits, long MetadataBytesWritten, long CapacityExceeded, long CopyOnWrites, long ChecksumErrors = 0);
