using EdgeBlock.Volumes;

namespace EdgeBlock.Daemon.Pools;

// The /v1 pool, volume and group resources, shared by the daemon (which serves them) and the CLI.
// Sizes in requests are strings as operators write them ("20G", "512M", or plain bytes), parsed
// by the daemon so that a bad one is a refusal naming it. Answers give bytes.
// Volumes and groups are answered as EdgeBlock.Volumes' VolumeInfo and GroupInfo, checks as PoolCheckReport.

/// <summary>A pool as `pool list|show` reports it. State "online", or "failed" with Error (the pool did not open at start).</summary>
public sealed record PoolSummary(
    string Name, string State, string? Error, Guid? Id, string MetadataDirectory, int ExtentSize,
    long SizeBytes, long AllocatedBytes, long ReservedBytes, long FreeBytes, long FreeingBytes, int Volumes,
    IReadOnlyList<PoolDriveInfo> Drives, PoolCounters? Counters);

/// <summary>Drives are "PATH[:SIZE]": a block device or file; a missing file is created with SIZE. A relative PATH is under the data directory.</summary>
public sealed record CreatePoolRequest(string Name, IReadOnlyList<string> Drives, string? ExtentSize = null, bool Force = false);

public sealed record AddDriveRequest(string Drive, bool Force = false);

public sealed record CreateVolumeRequest(string Name, string Size, string? Reserve = null, string? Group = null);

public sealed record ResizeVolumeRequest(string Size, bool Force = false);

public sealed record SnapshotRequest(string Name);

/// <summary>A writable clone of the snapshot in the URL (VOLUME@SNAP).</summary>
public sealed record CloneRequest(string Name, string? Reserve = null, string? Group = null);

/// <summary>Quota as a size ("100G"); null or "none" removes it.</summary>
public sealed record SetGroupQuotaRequest(string? Quota);
