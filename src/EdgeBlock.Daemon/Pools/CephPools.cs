using System.Text.Json;
using EdgeBlock.Api.Pools;
using EdgeBlock.Rbd;
using EdgeBlock.Storage;
using EdgeBlock.Volumes;
using Microsoft.Extensions.Logging;
using VolumeInfo = EdgeBlock.Volumes.VolumeInfo;

namespace EdgeBlock.Daemon.Pools;

/// <summary>
/// How a Ceph-backed pool reaches its cluster, kept in <c>pools/NAME/ceph-pool.json</c> (the keyring by path, never the key).
/// TimeoutSeconds: the pool's client timeout (null in records made before it existed: the daemon's default).
/// </summary>
public sealed record CephPoolRecord(string Conf, string CephPool, string? CephUser, string? Keyring, int? TimeoutSeconds = null);

/// <summary>
/// Pools backed by a Ceph cluster (issue J): a volume is an RBD image of the pool's RADOS pool, its UUID kept in the
/// image's metadata (<c>edgeblock.uuid</c>) so that it moves with the image. An export opens the image with the
/// exclusive lock, so a second daemon is refused naming the holder. What RBD cannot give — group quotas,
/// reservations, compression, checksums, EdgeBlock encryption, drives, scrub, check — is refused with the reason. Snapshots are RBD snapshots (protected, so
/// that they can be cloned), clones RBD clones.
/// librados calls block (at most the client timeout): callers run them off the I/O path.
/// </summary>
public sealed class CephPools : IDisposable
{
    public const string RecordFile = "ceph-pool.json";
    private const string UuidKey = "edgeblock.uuid";
    private const string OriginKey = "edgeblock.origin"; // VOLUME@SNAP of a clone made through EdgeBlock

    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Entry> _pools = new(StringComparer.Ordinal);

    /// <summary>A pool: its record, its connection (null until the cluster first answered) and its health probe.</summary>
    private sealed class Entry(CephPoolRecord record, CephConnectOptions options)
    {
        private CephCluster? _cluster;

        public CephPoolRecord Record { get; } = record;

        public CephConnectOptions Options { get; } = options;

        public CephHealth Health { get; set; } = null!;

        public CephCluster? Cluster
        {
            get => Volatile.Read(ref _cluster);
            set => Volatile.Write(ref _cluster, value);
        }
    }

    public CephPools(ILogger logger)
    {
        _logger = logger;
    }

    /// <summary>Client timeout of a pool's connection unless its record names one (librados otherwise waits forever for a cluster that is gone).</summary>
    public TimeSpan OpTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The range `pool create --timeout` accepts: below a second librados rounds to nothing; beyond 5 min the host gave up long before.</summary>
    public const int MaxTimeoutSeconds = 300;

    /// <summary>How often each pool's cluster is probed (<see cref="CephHealth"/>; tests shorten it).</summary>
    public TimeSpan ProbeInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a probe may go unanswered before the pool is degraded; management calls on a degraded pool wait at most this long.</summary>
    public TimeSpan ProbeTimeout { get; set; } = TimeSpan.FromSeconds(5);

    public static bool IsCephPool(string directory) => File.Exists(Path.Combine(directory, RecordFile));

    public bool Contains(string pool)
    {
        lock (_lock) return _pools.ContainsKey(pool);
    }

    public IReadOnlyList<string> Names()
    {
        lock (_lock) return _pools.Keys.ToList();
    }

    /// <summary>
    /// Opens the pool of a directory made by <see cref="Create"/> (throws only when its record cannot be read). Its cluster
    /// is connected by the first probe, waited for at most <see cref="ProbeTimeout"/>: a cluster that is gone when the
    /// daemon starts leaves the pool degraded, naming why, and the probes go on connecting until it answers.
    /// </summary>
    public void Open(string name, string directory)
    {
        CephPoolRecord record = JsonSerializer.Deserialize<CephPoolRecord>(File.ReadAllBytes(Path.Combine(directory, RecordFile)), ApiJson.Options)
            ?? throw new InvalidDataException($"{Path.Combine(directory, RecordFile)} is empty");
        Entry entry = Add(name, record, cluster: null);
        _logger.LogInformation("pool {Pool}: Ceph pool {CephPool} of {Conf} as {User}", name, record.CephPool, record.Conf, entry.Options.EntityName);
        entry.Health.Probe();
    }

    /// <summary>
    /// Ceph pool and user names go to librados as C strings and into our logs: a control character (NUL would cut the
    /// name short) or an absurd length is refused here, naming the option, instead of reaching the cluster.
    /// </summary>
    private static void CheckClusterName(string pool, string option, string? value)
    {
        if (value is null) return;
        if (value.Length is 0 or > 256 || value.Any(char.IsControl))
            throw new VolumeException(VolumeError.Invalid, $"pool {pool}: {option} must be 1 to 256 printable characters");
    }

    /// <summary>Connects (proving conf, user and keyring work) and only then writes the record.</summary>
    public PoolSummary Create(string name, string directory, CreatePoolRequest request)
    {
        if (request.Drives is { Count: > 0 })
            throw new VolumeException(VolumeError.Invalid, $"pool {name}: a Ceph pool has no drives (its images live in the cluster); leave the drives out");
        if (!string.IsNullOrEmpty(request.ExtentSize))
            throw new VolumeException(VolumeError.Invalid, $"pool {name}: --extent-size does not apply to a Ceph pool (RBD stripes images over 4 MiB objects)");
        if ((request.CephUser is null) != (request.Keyring is null))
            throw new VolumeException(VolumeError.Invalid, $"pool {name}: give --ceph-user and --keyring together (or neither, for the conf file's client.admin)");
        CheckClusterName(name, "--ceph-pool", request.CephPool);
        CheckClusterName(name, "--ceph-user", request.CephUser);
        if (request.CephTimeoutSeconds is < 1 or > MaxTimeoutSeconds)
            throw new VolumeException(VolumeError.Invalid, $"pool {name}: --timeout must be 1 s to {MaxTimeoutSeconds} s (it bounds every I/O and call to the cluster)");
        var record = new CephPoolRecord(Path.GetFullPath(request.Ceph!), string.IsNullOrEmpty(request.CephPool) ? "rbd" : request.CephPool,
            request.CephUser, request.Keyring is null ? null : Path.GetFullPath(request.Keyring), request.CephTimeoutSeconds);
        if (!File.Exists(record.Conf)) throw new VolumeException(VolumeError.Invalid, $"pool {name}: Ceph configuration {record.Conf} does not exist");
        CephCluster cluster = Connect(ConnectOptions(record));
        try
        {
            Directory.CreateDirectory(directory);
            File.WriteAllBytes(Path.Combine(directory, RecordFile), JsonSerializer.SerializeToUtf8Bytes(record, ApiJson.Options));
        }
        catch
        {
            cluster.Dispose();
            throw;
        }
        Add(name, record, cluster);
        return Summary(name, directory);
    }

    private Entry Add(string name, CephPoolRecord record, CephCluster? cluster)
    {
        var entry = new Entry(record, ConnectOptions(record)) { Cluster = cluster };
        entry.Health = new CephHealth(name, () => Probe(entry), ProbeInterval, ProbeTimeout, _logger, images: 0);
        lock (_lock) _pools[name] = entry;
        return entry;
    }

    /// <summary>
    /// A health probe: lists the pool's images, connecting first when the pool has no connection. A new connection is
    /// kept only once it answered: one made while the monitor was back but the OSD not yet never saw the OSD return
    /// (its ops timed out for minutes after `rados` answered, on Ceph 16.2), so it is closed and the next probe connects
    /// afresh. Nothing else holds such a connection: it is published (<see cref="Entry.Cluster"/>) only after answering.
    /// </summary>
    private static int Probe(Entry entry)
    {
        if (entry.Cluster is { } connected) return connected.ListImages().Count;
        CephCluster cluster = Connect(entry.Options);
        try
        {
            int images = cluster.ListImages().Count;
            entry.Cluster = cluster;
            return images;
        }
        catch
        {
            cluster.Dispose();
            throw;
        }
    }

    private CephConnectOptions ConnectOptions(CephPoolRecord record) =>
        new(record.Conf, record.CephPool, record.CephUser, record.Keyring)
        {
            OpTimeout = record.TimeoutSeconds is { } seconds ? TimeSpan.FromSeconds(seconds) : OpTimeout,
        };

    private static CephCluster Connect(CephConnectOptions options)
    {
        try
        {
            return CephCluster.Connect(options);
        }
        catch (CephException e)
        {
            throw Refusal(e);
        }
    }

    /// <summary>The pool as `pool show` reports it: a probe (bounded by <see cref="ProbeTimeout"/>) says online or degraded and why.</summary>
    public PoolSummary Summary(string name, string directory)
    {
        Entry entry = Get(name);
        string? degraded = entry.Health.Probe();
        return new PoolSummary(name, degraded is null ? "online" : "degraded", degraded, null, directory, 0, 0, 0, 0, 0, 0, entry.Health.Images,
            [], null, Kind: "ceph", Ceph: $"{entry.Record.Conf} pool {entry.Record.CephPool} as {entry.Options.EntityName}, timeout {entry.Options.OpTimeout.TotalSeconds:0} s");
    }

    /// <summary>Whether a pool is degraded now (no probe: the last one's verdict); listing every volume leaves such pools out.</summary>
    public bool IsDegraded(string name) => Get(name).Health.Degraded is not null;

    /// <summary>
    /// The cluster of a pool for a management call. A degraded pool is probed first (joining the probe in flight) and
    /// refused naming why when its cluster still does not answer: the call returns within the probe timeout, not the client's.
    /// </summary>
    private CephCluster Cluster(string name)
    {
        Entry entry = Get(name);
        if ((entry.Health.Degraded is not null || entry.Cluster is null) && entry.Health.Probe() is { } why)
            throw new VolumeException(VolumeError.Io, $"pool {name} is degraded: {why}; retry when `edgeblock pool show {name}` says online");
        return entry.Cluster ?? throw new VolumeException(VolumeError.Io, $"pool {name} is not connected to its Ceph cluster yet; retry when `edgeblock pool show {name}` says online");
    }

    private Entry Get(string name)
    {
        lock (_lock)
        {
            return _pools.TryGetValue(name, out var pool) ? pool : throw new VolumeException(VolumeError.NotFound, $"no pool {name}");
        }
    }

    /// <summary>What a Ceph pool refuses, with the reason; null when the request asks nothing RBD cannot give.</summary>
    public static string? Unsupported(CreateVolumeRequest request) =>
        !string.IsNullOrEmpty(request.Reserve) ? "reservations (--reserve): RBD images are thin and Ceph has no per-image reservation"
        : !string.IsNullOrEmpty(request.Group) ? "group quotas (--group): use a Ceph pool quota (ceph osd pool set-quota) instead"
        : request.Compress is { Length: > 0 } c && c != "off" ? "compression (--compress): use BlueStore compression on the Ceph pool instead"
        : request.Checksum ? "checksums (--checksum): BlueStore already checksums every stored block"
        : request.Encrypt ? "EdgeBlock encryption (--encrypt): use RBD/LUKS encryption (rbd encryption format) instead"
        : null;

    public VolumeInfo CreateVolume(string pool, string volume, long sizeBytes, CreateVolumeRequest request)
    {
        if (Unsupported(request) is { } why)
            throw new VolumeException(VolumeError.Invalid, $"volume {pool}/{volume}: a Ceph pool does not offer {why}");
        PoolNames.Check("volume", volume);
        if (sizeBytes <= 0 || sizeBytes % RbdBlockDevice.DefaultBlockSize != 0)
            throw new VolumeException(VolumeError.Invalid, $"volume {pool}/{volume}: the size must be a positive multiple of 4K");
        CephCluster cluster = Cluster(pool);
        return Run(() =>
        {
            cluster.CreateImage(volume, sizeBytes);
            using RbdImage image = cluster.OpenImage(volume, exclusive: false);
            image.SetMetadata(UuidKey, Guid.NewGuid().ToString());
            return Info(pool, image, exported: false);
        });
    }

    public VolumeInfo GetVolume(string pool, string volume, bool exported)
    {
        CephCluster cluster = Cluster(pool);
        (string name, string? snap) = SplitSnapshot(volume);
        return Run(() =>
        {
            using RbdImage image = cluster.OpenImage(name, exclusive: false);
            if (snap is null) return Info(pool, image, exported);
            return image.Snapshots().FirstOrDefault(s => s.Name == snap) is { Name: not null } found
                ? SnapshotInfo(pool, image, found.Name, found.Size)
                : throw new VolumeException(VolumeError.NotFound, $"no snapshot {pool}/{volume} (RBD image {image.Spec} has no snapshot {snap})");
        });
    }

    private static (string Name, string? Snapshot) SplitSnapshot(string volume)
    {
        int at = volume.IndexOf('@');
        return at < 0 ? (volume, null) : (volume[..at], volume[(at + 1)..]);
    }

    /// <summary>
    /// An RBD snapshot of the volume (the exported image's own handle when it is exported: its exclusive lock is not handed
    /// to another opener), protected at once so that it can be cloned.
    /// </summary>
    public VolumeInfo Snapshot(string pool, string volume, string snapshot, RbdImage? exported)
    {
        PoolNames.Check("snapshot", snapshot);
        CephCluster cluster = Cluster(pool);
        return Run(() =>
        {
            RbdImage image = exported ?? cluster.OpenImage(volume, exclusive: false);
            try
            {
                if (image.ListSnapshots().Contains(snapshot))
                    throw new VolumeException(VolumeError.AlreadyExists, $"snapshot {pool}/{volume}@{snapshot} already exists");
                image.CreateSnapshot(snapshot);
                image.ProtectSnapshot(snapshot);
                return SnapshotInfo(pool, image, snapshot, image.Size);
            }
            finally
            {
                if (exported is null) image.Dispose();
            }
        });
    }

    /// <summary>A copy-on-write RBD clone of a (protected) snapshot: a new volume with a UUID of its own and the snapshot as its origin.</summary>
    public VolumeInfo Clone(string pool, string snapshot, string name)
    {
        PoolNames.Check("volume", name);
        (string parentName, string? snap) = SplitSnapshot(snapshot);
        if (snap is null) throw new VolumeException(VolumeError.Invalid, $"clone {pool}/{name}: clone a snapshot (POOL/VOLUME@SNAP), not volume {pool}/{snapshot}");
        CephCluster cluster = Cluster(pool);
        return Run(() =>
        {
            using (RbdImage parent = cluster.OpenImage(parentName, exclusive: false))
            {
                if (!parent.ListSnapshots().Contains(snap)) throw new VolumeException(VolumeError.NotFound, $"no snapshot {pool}/{snapshot}");
                cluster.CloneImage(parent, snap, name);
            }
            using RbdImage clone = cluster.OpenImage(name, exclusive: false);
            // librbd copies the parent's metadata into the clone: its UUID and origin are replaced, never shared.
            clone.SetMetadata(UuidKey, Guid.NewGuid().ToString());
            clone.SetMetadata(OriginKey, snapshot);
            return Info(pool, clone, exported: false);
        });
    }

    /// <summary>
    /// Takes an existing image of the pool's RADOS pool as volume <paramref name="name"/>: renamed to it when the names
    /// differ, and given an EdgeBlock UUID unless it has one. Its data, features and snapshots stay as they are.
    /// </summary>
    public VolumeInfo Adopt(string pool, string name, string image)
    {
        PoolNames.Check("volume", name);
        if (string.IsNullOrEmpty(image) || image.Contains('/') || image.Contains('@') || image.Any(char.IsControl) || image.Length > 256)
            throw new VolumeException(VolumeError.Invalid, $"volume {pool}/{name}: --image names an RBD image of the pool's Ceph pool (no pool/ or @snapshot)");
        CephCluster cluster = Cluster(pool);
        return Run(() =>
        {
            if (image != name) cluster.RenameImage(image, name);
            using RbdImage adopted = cluster.OpenImage(name, exclusive: false);
            return Info(pool, adopted, exported: false);
        });
    }

    public IReadOnlyList<VolumeInfo> ListVolumes(string pool, Func<string, bool> exported)
    {
        CephCluster cluster = Cluster(pool);
        return Run(() => cluster.ListImages().SelectMany(name =>
        {
            using RbdImage image = cluster.OpenImage(name, exclusive: false);
            return image.Snapshots().Select(s => SnapshotInfo(pool, image, s.Name, s.Size)).Prepend(Info(pool, image, exported(name))).ToList();
        }).ToList());
    }

    public VolumeInfo ResizeVolume(string pool, string volume, long sizeBytes, bool force)
    {
        CephCluster cluster = Cluster(pool);
        return Run(() =>
        {
            using RbdImage image = cluster.OpenImage(volume, exclusive: true);
            if (sizeBytes < image.Size && !force)
                throw new VolumeException(VolumeError.Invalid, $"volume {pool}/{volume}: shrinking drops the data past the new end; add --force");
            if (sizeBytes % RbdBlockDevice.DefaultBlockSize != 0)
                throw new VolumeException(VolumeError.Invalid, $"volume {pool}/{volume}: the size must be a multiple of 4K");
            image.Resize(sizeBytes);
            return Info(pool, image, exported: false);
        });
    }

    /// <summary>
    /// Removes an image, or (VOLUME@SNAP) one snapshot: unprotected first, refused naming why while clones of it exist.
    /// An image with snapshots is refused naming them: they go first, one by one, so that nothing is lost by surprise.
    /// </summary>
    public void DeleteVolume(string pool, string volume)
    {
        CephCluster cluster = Cluster(pool);
        (string name, string? snap) = SplitSnapshot(volume);
        Run(() =>
        {
            using (RbdImage image = cluster.OpenImage(name, exclusive: false))
            {
                IReadOnlyList<string> snapshots = image.ListSnapshots();
                if (snap is not null)
                {
                    if (!snapshots.Contains(snap)) throw new VolumeException(VolumeError.NotFound, $"no snapshot {pool}/{volume}");
                    image.UnprotectSnapshot(snap);
                    image.RemoveSnapshot(snap);
                    return 0;
                }
                if (snapshots.Count > 0)
                    throw new VolumeException(VolumeError.Busy, $"volume {pool}/{volume} has snapshots ({string.Join(", ", snapshots)}); delete them first "
                                                                + $"(edgeblock volume delete {pool}/{volume}@{snapshots[0]})");
            }
            cluster.RemoveImage(name);
            return 0;
        });
    }

    /// <summary>The image, opened with the exclusive lock, as a block device that closes it when disposed, and the volume it is.</summary>
    public (IBlockDevice Device, VolumeInfo Info) OpenForExport(string pool, string volume)
    {
        CephCluster cluster = Cluster(pool);
        return Run(() =>
        {
            RbdImage image = cluster.OpenImage(volume, exclusive: true);
            try
            {
                VolumeInfo info = Info(pool, image, exported: true);
                return ((IBlockDevice)new RbdBlockDevice(image, ownsImage: true), info);
            }
            catch
            {
                image.Dispose();
                throw;
            }
        });
    }

    private static VolumeInfo Info(string pool, RbdImage image, bool exported) =>
        new(pool, image.Name, ImageUuid(image), image.Size, 0, 0, null, false, image.GetMetadata(OriginKey), exported, image.Created);

    /// <summary>The image's EdgeBlock UUID; an image made outside EdgeBlock gets one now, kept with the image from then on.</summary>
    private static Guid ImageUuid(RbdImage image)
    {
        if (Guid.TryParse(image.GetMetadata(UuidKey), out Guid uuid)) return uuid;
        uuid = Guid.NewGuid();
        image.SetMetadata(UuidKey, uuid.ToString());
        return uuid;
    }

    /// <summary>
    /// A snapshot's UUID, derived from its image's and its name: stable on every daemon without writing metadata (which
    /// needs the image's exclusive lock, held by the export of an exported volume), and never another volume's.
    /// </summary>
    private static VolumeInfo SnapshotInfo(string pool, RbdImage image, string snapshot, long size)
    {
        Span<byte> hash = stackalloc byte[32];
        System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes($"{ImageUuid(image)}@{snapshot}"), hash);
        hash[6] = (byte)((hash[6] & 0x0F) | 0x80); // RFC 9562 version 8 (custom), variant 10
        hash[8] = (byte)((hash[8] & 0x3F) | 0x80);
        var uuid = new Guid(hash[..16], bigEndian: true);
        return new VolumeInfo(pool, $"{image.Name}@{snapshot}", uuid, size, 0, 0, null, true, image.Name, false, image.Created);
    }

    private static T Run<T>(Func<T> action)
    {
        try
        {
            return action();
        }
        catch (CephException e)
        {
            throw Refusal(e);
        }
    }

    /// <summary>A Ceph failure as a pool refusal (the API maps those to 400/404/409/500).</summary>
    public static VolumeException Refusal(CephException e) => new(e.Errno switch
    {
        2 => VolumeError.NotFound,             // ENOENT
        17 => VolumeError.AlreadyExists,       // EEXIST
        16 or 30 or 39 => VolumeError.Busy,    // EBUSY, EROFS (locked elsewhere), ENOTEMPTY (snapshots)
        22 or 1 or 13 => VolumeError.Invalid,  // EINVAL (e.g. keyring mode), EPERM, EACCES
        _ => VolumeError.Io,
    }, e.Message);

    public void Dispose()
    {
        List<(string Name, Entry Entry)> pools;
        lock (_lock)
        {
            pools = _pools.Select(p => (p.Key, p.Value)).ToList();
            _pools.Clear();
        }
        foreach ((string name, Entry entry) in pools)
        {
            // librados must not be shut down under a call in flight: a probe hung on a dead cluster leaves its handle to the process's exit.
            if (entry.Health.Stop(entry.Options.OpTimeout)) entry.Cluster?.Dispose();
            else _logger.LogWarning("pool {Pool}: a probe of the Ceph cluster is still waiting; its connection is left to the process's exit", name);
        }
    }
}
