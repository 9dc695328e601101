namespace EdgeBlock.Api.Pools;

// The /v1 pool, volume and group resources, shared by the daemon (which serves them) and the CLI.
// Sizes in requests are strings as operators write them ("20G", "512M", or plain bytes), parsed
// by the daemon so that a bad one is a refusal naming it. Answers give bytes.
// These are the wire form of EdgeBlock.Volumes' own records (the daemon maps them, Daemon/Pools/PoolContracts.cs),
// so that a client needs nothing of the storage layer and the storage layer can change without changing the API.

/// <summary>
/// A pool as `pool list|show` reports it. State "online", or "failed" with Error (the pool did not open at start).
/// Kind "local" (drives) or "ceph" (RBD images; Ceph: "CONF pool P as client.U"; space figures are left at 0).
/// LogicalBytes: what its writable volumes hold; PhysicalBytes: what that takes on the drives (shared extents once);
/// CompressionRatio: logical per physical byte, 2 decimals (1 when nothing is stored).
/// </summary>
public sealed record PoolSummary(
    string Name, string State, string? Error, Guid? Id, string MetadataDirectory, int ExtentSize,
    long SizeBytes, long AllocatedBytes, long ReservedBytes, long FreeBytes, long FreeingBytes, int Volumes,
    IReadOnlyList<PoolDriveInfo> Drives, PoolCounters? Counters,
    long LogicalBytes = 0, long PhysicalBytes = 0, double CompressionRatio = 1, string Kind = "local", string? Ceph = null);

/// <summary>
/// Drives are "PATH[:SIZE]": a block device or file; a missing file is created with SIZE. A relative PATH is under the data directory.
/// A pool backed by a Ceph cluster has no drives: Ceph is the ceph.conf path, CephPool the RADOS pool of its RBD images ("rbd"
/// by default), CephUser and Keyring the cephx user and its keyring file (mode 0600; the key is never read back).
/// </summary>
/// <summary>A new pool over drives, or backed by a Ceph cluster (Ceph: its conf file); CephTimeoutSeconds: the client timeout of its I/O and calls (1-300, default 30).</summary>
public sealed record CreatePoolRequest(string Name, IReadOnlyList<string>? Drives, string? ExtentSize = null, bool Force = false,
    string? Ceph = null, string? CephPool = null, string? CephUser = null, string? Keyring = null, int? CephTimeoutSeconds = null);

public sealed record AddDriveRequest(string Drive, bool Force = false);

/// <summary>
/// Compress: "off" (the default), "lz4" or "zstd[:LEVEL]" (1-19, 3 by default). Checksum: crc32c over each stored chunk,
/// checked on every read. Both are chosen at creation and kept for the volume's life (its snapshots and clones inherit them).
/// </summary>
/// <summary>
/// A new volume. Encrypt needs one key source: KeyFile (absolute path of 64 random bytes, mode 0600) or KeyCommand
/// (run by the daemon with /bin/sh, as the daemon's user, whenever the volume opens; prints the key).
/// </summary>
public sealed record CreateVolumeRequest(string Name, string Size, string? Reserve = null, string? Group = null, string? Compress = null, bool Checksum = false,
    bool Encrypt = false, string? KeyFile = null, string? KeyCommand = null);

public sealed record ResizeVolumeRequest(string Size, bool Force = false);

public sealed record SnapshotRequest(string Name);

/// <summary>A writable clone of the snapshot in the URL (VOLUME@SNAP).</summary>
public sealed record CloneRequest(string Name, string? Reserve = null, string? Group = null);

/// <summary>An existing RBD image of a Ceph pool's cluster (its name in the pool's RADOS pool) taken as the volume in the URL.</summary>
public sealed record AdoptVolumeRequest(string Image);

/// <summary>Quota as a size ("100G"); null or "none" removes it.</summary>
public sealed record SetGroupQuotaRequest(string? Quota);

/// <summary>One drive of a pool: its data capacity and what of it is allocated.</summary>
public sealed record PoolDriveInfo(int Index, string Path, Guid Id, long SizeBytes, long AllocatedBytes, long FreeBytes);

/// <summary>Running totals since the pool was opened.</summary>
public sealed record PoolCounters(long Commits, long MetadataBytesWritten, long CapacityExceeded, long CopyOnWrites, long ChecksumErrors = 0);

/// <summary>
/// A volume or snapshot as `volume show` reports it. Sizes in bytes; Exported: a namespace or vhost export uses it.
/// Compression as `--compress` spells it ("off", "lz4", "zstd:3"); LogicalBytes: what was written; PhysicalBytes: what
/// it takes on the drives; CompressionRatio: logical per physical byte, 2 decimals (1 when nothing is stored);
/// ChecksumErrors: reads whose stored data did not match its checksum (each failed with Unrecovered Read Error);
/// MapBytes: the daemon memory the volume's map takes (it grows with what is written, not with the size).
/// Qos: its limits and weight and what they did (null: none set and never throttled).
/// OriginCopy: while an image attached to the volume is still being copied (null otherwise).
/// </summary>
public sealed record VolumeInfo(
    string Pool, string Name, Guid Uuid, long SizeBytes, long AllocatedBytes, long ReserveBytes, string? Group,
    bool IsSnapshot, string? Origin, bool Exported, DateTimeOffset Created,
    string Compression = "off", bool Checksum = false, long LogicalBytes = 0, long PhysicalBytes = 0, double CompressionRatio = 1,
    long ChecksumErrors = 0, bool Encrypted = false, long MapBytes = 0, QosInfo? Qos = null, OriginCopyInfo? OriginCopy = null);

/// <summary>
/// An attached image's copy: File; BytesCopied of BytesTotal (the image's virtual size) resolved — copied, written or
/// discarded —; Copying: the background copy runs; Problem: why the image cannot be used (missing, changed), if so.
/// </summary>
public sealed record OriginCopyInfo(string File, long BytesTotal, long BytesCopied, bool Copying, string? Problem);

/// <summary>A quota group: its quota (null: none), the space its writable volumes map, and its QoS limits (null: none).</summary>
public sealed record GroupInfo(string Name, long? QuotaBytes, long UsedBytes, int VolumeCount, QosInfo? Qos = null);

/// <summary>What `pool check` found: problems (empty when consistent) and what it counted.</summary>
public sealed record PoolCheckReport(IReadOnlyList<string> Problems, long Volumes, long MappedExtents, long AllocatedExtents, long FreeExtents)
{
    public bool Consistent => Problems.Count == 0;
}
