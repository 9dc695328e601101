namespace EdgeBlock.Volumes;

/// <summary>A pool as `pool show` reports it. Sizes in bytes.</summary>
public sealed record PoolInfo(
    string Name, Guid Id, int ExtentSize, long SizeBytes, long AllocatedBytes, long ReservedBytes, long FreeBytes,
    long FreeingBytes, int VolumeCount, IReadOnlyList<PoolDriveInfo> Drives, PoolCounters Counters);

public sealed record PoolDriveInfo(int Index, string Path, Guid Id, long SizeBytes, long AllocatedBytes, long FreeBytes);

/// <summary>A volume or snapshot as `volume show` reports it.</summary>
public sealed record VolumeInfo(
    string Pool, string Name, Guid Uuid, long SizeBytes, long AllocatedBytes, long ReserveBytes, string? Group,
    bool IsSnapshot, string? Origin, bool Exported, DateTimeOffset Created);

public sealed record GroupInfo(string Name, long? QuotaBytes, long UsedBytes, int VolumeCount);

/// <summary>Running totals since the pool was opened.</summary>
public sealed record PoolCounters(long Commits, long MetadataBytesWritten, long CapacityExceeded, long CopyOnWrites);
