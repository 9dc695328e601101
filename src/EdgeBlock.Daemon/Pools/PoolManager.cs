using EdgeBlock.Api.Pools;
using EdgeBlock.Daemon.Management;
using EdgeBlock.Storage.Qos;
using EdgeBlock.Volumes;
using GroupInfo = EdgeBlock.Volumes.GroupInfo;
using PoolCheckReport = EdgeBlock.Volumes.PoolCheckReport;
using VolumeInfo = EdgeBlock.Volumes.VolumeInfo;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Daemon.Pools;

/// <summary>
/// The daemon's pools: every pool under <c>&lt;data dir&gt;/pools/&lt;NAME&gt;/</c> (its RocksDB
/// metadata, which lists its drives) is opened at start, before namespaces are applied, and
/// closed at shutdown after them. Pools are storage state, not desired config: they are not in
/// edgeblock.json. A pool that fails to open is remembered with its message; its namespaces are
/// refused and the daemon runs on. Also hands out volumes to namespaces, each at most once.
/// Refusals are <see cref="VolumeException"/>s (see <see cref="Refusal"/> for their HTTP form).
/// </summary>
public sealed class PoolManager : IAsyncDisposable
{
    private readonly string _dataDirectory;
    private readonly ILogger _logger;
    private readonly object _lock = new();
    private readonly SemaphoreSlim _gate = new(1, 1); // pool creation and drive additions, one at a time
    private readonly Dictionary<string, Pool> _pools = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _failed = new(StringComparer.Ordinal);
    private readonly List<VolumeExport> _exports = [];
    private readonly HashSet<string> _opening = new(StringComparer.Ordinal); // exports being opened outside the lock
    private int _disposed;

    public PoolManager(string dataDirectory, ILogger logger)
    {
        _dataDirectory = dataDirectory;
        _logger = logger;
        Scrubs = new ScrubJobs(Get, logger);
        Images = new ImageJobs(Get, dataDirectory, logger);
        Ceph = new CephPools(logger);
    }

    /// <summary>The pools backed by a Ceph cluster (RBD images); the rest of this class dispatches to it by pool name.</summary>
    public CephPools Ceph { get; }

    /// <summary>The pools' background scrubs (one at a time per pool).</summary>
    public ScrubJobs Scrubs { get; }

    /// <summary>Image imports and exports running in the background.</summary>
    public ImageJobs Images { get; }

    public string PoolsDirectory => Path.Combine(_dataDirectory, "pools");

    /// <summary>The storage policy's verdict on a new drive (path, --force), set by the management service; null: no policy (tests of pools alone).</summary>
    public Func<string, bool, PolicyRefusal?>? DrivePolicy { get; set; }

    /// <summary>The storage policy's verdict on a Ceph pool's conf file or keyring (what, path); null: no policy (tests of pools alone).</summary>
    public Func<string, string, PolicyRefusal?>? CephFilePolicy { get; set; }

    /// <summary>QoS of the exported volumes: every export's device passes its volume's flow.</summary>
    public QosRegistry Qos { get; } = new(TimeProvider.System);

    /// <summary>Called after a volume was deleted (the management service drops its QoS from the desired state).</summary>
    public Func<string, string, Task>? VolumeDeleted { get; set; }

    /// <summary>Background commit interval of opened pools (tests shorten it).</summary>
    public TimeSpan CommitInterval { get; init; } = TimeSpan.FromSeconds(2);

    private PoolOptions Options(int? extentSize = null) => new()
    {
        Logger = _logger,
        CommitInterval = CommitInterval,
        ExtentSize = extentSize ?? new PoolOptions().ExtentSize,
        OpenOrigin = record => ImageOrigin.Reopen(record, _logger),
    };

    /// <summary>Opens every pool under <see cref="PoolsDirectory"/>; failures are logged and remembered, never thrown.</summary>
    public void OpenAll()
    {
        if (!Directory.Exists(PoolsDirectory)) return;
        foreach (string dir in Directory.GetDirectories(PoolsDirectory).Order(StringComparer.Ordinal))
        {
            string name = Path.GetFileName(dir);
            if (!PoolNames.IsValid(name))
            {
                _logger.LogWarning("{Dir} is not a pool (not a valid pool name); ignored", dir);
                continue;
            }
            try
            {
                if (CephPools.IsCephPool(dir))
                {
                    Ceph.Open(name, dir);
                    continue;
                }
                var pool = Pool.Open(dir, Options());
                lock (_lock) _pools[name] = pool;
                var info = pool.Info();
                _logger.LogInformation("pool {Pool}: {Drives} drive(s), {Volumes} volume(s), {Size}, {Allocated} allocated, {Free} free",
                    name, info.Drives.Count, info.VolumeCount, Sizes.Format(info.SizeBytes), Sizes.Format(info.AllocatedBytes), Sizes.Format(info.FreeBytes));
                Scrubs.ResumeInterrupted(pool);
                Images.ResumeAttached(pool);
            }
            catch (Exception e)
            {
                lock (_lock) _failed[name] = e.Message;
                _logger.LogError("pool {Pool} did not open: {Message}; its namespaces are refused until it opens (fix it, then restart the daemon)", name, e.Message);
            }
        }
    }

    // ---- pools -------------------------------------------------------------------------

    public IReadOnlyList<PoolSummary> List()
    {
        List<PoolSummary> summaries;
        lock (_lock) summaries = _pools.Select(p => Summarize(p.Value)).Concat(_failed.Select(f => Failed(f.Key, f.Value))).ToList();
        // Outside the lock: each Ceph pool is probed (bounded), and a slow cluster must not hold up the other pools' calls.
        return summaries.Concat(Ceph.Names().Select(CephSummary)).OrderBy(p => p.Name, StringComparer.Ordinal).ToList();
    }

    public PoolSummary Show(string name)
    {
        lock (_lock)
        {
            if (_failed.TryGetValue(name, out string? error)) return Failed(name, error);
        }
        return Ceph.Contains(name) ? CephSummary(name) : Summarize(Get(name));
    }

    private PoolSummary Summarize(Pool pool)
    {
        PoolInfo i = pool.Info();
        return new PoolSummary(i.Name, "online", null, i.Id, pool.MetadataDirectory, i.ExtentSize, i.SizeBytes, i.AllocatedBytes,
            i.ReservedBytes, i.FreeBytes, i.FreeingBytes, i.VolumeCount, i.Drives.Select(d => d.ToContract()).ToList(), i.Counters.ToContract(),
            i.LogicalBytes, i.PhysicalBytes, PoolContracts.Ratio(i.CompressionRatio));
    }

    private PoolSummary CephSummary(string name) => Ceph.Summary(name, Path.Combine(PoolsDirectory, name));

    /// <summary>What a Ceph pool cannot do, refused naming why (RBD has no drives, extents or scrub of ours).</summary>
    private void RefuseCeph(string name, string what)
    {
        if (Ceph.Contains(name))
            throw new VolumeException(VolumeError.Invalid, $"pool {name} is backed by Ceph: {what}");
    }

    private PoolSummary Failed(string name, string error) =>
        new(name, "failed", error, null, Path.Combine(PoolsDirectory, name), 0, 0, 0, 0, 0, 0, 0, [], null);

    /// <summary>Pool infos of the open pools (metrics).</summary>
    public IReadOnlyList<PoolInfo> Infos()
    {
        List<Pool> pools;
        lock (_lock) pools = _pools.Values.ToList();
        return pools.Select(p => p.Info()).ToList();
    }

    /// <summary>Chunks checked and errors of each open pool's current or last scrub (metrics); pools that never scrubbed are left out.</summary>
    public IReadOnlyList<(string Pool, bool Running, long ChunksChecked, int Errors)> ScrubGauges()
    {
        List<Pool> pools;
        lock (_lock) pools = _pools.Values.ToList();
        return pools.Select(p => (p, s: p.Scrub)).Where(x => x.s != null).Select(x => (x.p.Name, x.p.ScrubRunning, x.s!.ChunksChecked, x.s.Errors.Count)).ToList();
    }

    /// <summary>An open pool; a missing or failed one is refused naming why.</summary>
    public Pool Get(string name)
    {
        RefuseCeph(name, "its images are managed by the cluster; this operation needs a pool over local drives");
        lock (_lock)
        {
            if (_pools.TryGetValue(name, out Pool? pool)) return pool;
            if (_failed.TryGetValue(name, out string? error))
                throw new VolumeException(VolumeError.Io, $"pool {name} did not open at start: {error} (fix it, then restart the daemon)");
        }
        throw new VolumeException(VolumeError.NotFound, $"no pool {name} (see `edgeblock pool list`; create one with `edgeblock pool create {name} PATH...`)");
    }

    public async Task<PoolSummary> CreateAsync(CreatePoolRequest request)
    {
        string name = request.Name ?? "";
        PoolNames.CheckPool(name);
        if (!string.IsNullOrEmpty(request.Ceph)) return await CreateCephAsync(name, request).ConfigureAwait(false);
        if (request.CephTimeoutSeconds is not null)
            throw new VolumeException(VolumeError.Invalid, $"pool {name}: --timeout applies to a Ceph pool (--ceph): local drives have no client timeout");
        int? extentSize = null;
        if (!string.IsNullOrEmpty(request.ExtentSize))
        {
            long bytes = ParseSize(request.ExtentSize, $"pool {name}: extent size");
            if (bytes > int.MaxValue) throw new VolumeException(VolumeError.Invalid, $"pool {name}: extent size {request.ExtentSize} is too large");
            extentSize = (int)bytes;
        }
        if (request.Drives is not { Count: > 0 }) throw new VolumeException(VolumeError.Invalid, $"pool {name}: give at least one drive (PATH[:SIZE])");
        var drives = request.Drives.Select(d => ParseDrive(d, $"pool {name}")).ToList();
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            lock (_lock)
            {
                if (_pools.ContainsKey(name) || _failed.ContainsKey(name)) throw new VolumeException(VolumeError.AlreadyExists, $"pool {name} already exists");
            }
            string dir = Path.Combine(PoolsDirectory, name);
            if (Directory.Exists(dir) && Directory.EnumerateFileSystemEntries(dir).Any())
                throw new VolumeException(VolumeError.AlreadyExists, $"pool {name}: {dir} already holds metadata (a pool that did not open?); remove it to reuse the name");
            foreach (PoolDriveSpec d in drives) CheckDrive(d, request.Force);
            Directory.CreateDirectory(PoolsDirectory);
            Pool pool = await Pool.CreateAsync(name, dir, drives, Options(extentSize), request.Force).ConfigureAwait(false);
            lock (_lock) _pools[name] = pool;
            return Summarize(pool);
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<PoolSummary> CreateCephAsync(string name, CreatePoolRequest request)
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            lock (_lock)
            {
                if (_pools.ContainsKey(name) || _failed.ContainsKey(name) || Ceph.Contains(name)) throw new VolumeException(VolumeError.AlreadyExists, $"pool {name} already exists");
            }
            string dir = Path.Combine(PoolsDirectory, name);
            if (Directory.Exists(dir) && Directory.EnumerateFileSystemEntries(dir).Any())
                throw new VolumeException(VolumeError.AlreadyExists, $"pool {name}: {dir} already holds metadata (a pool that did not open?); remove it to reuse the name");
            request = request with { Ceph = CephFile("Ceph configuration", request.Ceph!), Keyring = request.Keyring is { } k ? CephFile("keyring", k) : null };
            return await Task.Run(() => Ceph.Create(name, dir, request)).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// A Ceph file as librados will open it: a relative path is under the data directory, the storage policy judges
    /// where it leads, and that real path is what the pool keeps (a link changed later does not move it elsewhere).
    /// </summary>
    private string CephFile(string what, string path)
    {
        string full = Path.GetFullPath(path, _dataDirectory);
        if (CephFilePolicy?.Invoke(what, full) is { } refusal) throw new VolumeException(VolumeError.Invalid, refusal.Message);
        return StoragePolicy.RealPath(full);
    }

    public async Task<PoolSummary> AddDriveAsync(string poolName, AddDriveRequest request)
    {
        Pool pool = Get(poolName);
        PoolDriveSpec drive = ParseDrive(request.Drive, $"pool {poolName}");
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            CheckDrive(drive, request.Force, except: pool);
            await pool.AddDriveAsync(drive, request.Force).ConfigureAwait(false);
            return Summarize(pool);
        }
        finally
        {
            _gate.Release();
        }
    }

    public PoolCheckReport Check(string poolName) => Get(poolName).Check();

    /// <summary>A new drive: unused by other pools, then what the storage policy says (where it may be, what it holds).</summary>
    private void CheckDrive(PoolDriveSpec drive, bool force, Pool? except = null)
    {
        CheckDriveUnused(drive.Path, except);
        if (DrivePolicy?.Invoke(drive.Path, force) is { } refusal)
            throw new VolumeException(refusal.InUse ? VolumeError.Busy : VolumeError.Invalid, refusal.Message);
    }

    /// <summary>A drive of one open pool may not go into another, --force or not.</summary>
    private void CheckDriveUnused(string path, Pool? except = null)
    {
        string full = Path.GetFullPath(path);
        List<Pool> pools;
        lock (_lock) pools = _pools.Values.Where(p => p != except).ToList();
        foreach (Pool p in pools)
        {
            if (p.Info().Drives.FirstOrDefault(d => Path.GetFullPath(d.Path) == full) is { } used)
                throw new VolumeException(VolumeError.Busy, $"{full} is drive {used.Index} of pool {p.Name}");
        }
    }

    /// <summary>"PATH[:SIZE]": a trailing ":SIZE" needs its unit (":256M"), as in file backends; a relative PATH is under the data directory.</summary>
    public PoolDriveSpec ParseDrive(string? text, string what)
    {
        text = text?.Trim() ?? "";
        if (text.Length == 0) throw new VolumeException(VolumeError.Invalid, $"{what}: a drive is PATH[:SIZE]; got an empty one");
        string path = text;
        long? size = null;
        int last = text.LastIndexOf(':');
        if (last > 0 && text.Length > last + 1 && char.IsLetter(text[^1]) && Sizes.TryParse(text[(last + 1)..], out long bytes, out _))
        {
            size = bytes;
            path = text[..last];
        }
        string full = Path.GetFullPath(path, _dataDirectory);
        if (Directory.Exists(full)) throw new VolumeException(VolumeError.Invalid, $"{what}: drive {full} is a directory, not a file or block device");
        string? parent = Path.GetDirectoryName(full);
        if (parent != null && !Directory.Exists(parent)) throw new VolumeException(VolumeError.Invalid, $"{what}: drive {full}: directory {parent} does not exist");
        if (size == null && !File.Exists(full)) throw new VolumeException(VolumeError.Invalid, $"{what}: drive {full} does not exist; give a size to create it ({path}:SIZE)");
        if (size is { } s && (s < 1 << 20 || s % 4096 != 0)) throw new VolumeException(VolumeError.Invalid, $"{what}: drive {text}: the size must be at least 1M and a multiple of 4K");
        return new PoolDriveSpec(full, size);
    }

    public static long ParseSize(string? text, string what)
    {
        if (string.IsNullOrWhiteSpace(text)) throw new VolumeException(VolumeError.Invalid, $"{what}: a size is needed (examples: 512M, 20G)");
        if (!Sizes.TryParse(text, out long bytes, out string error)) throw new VolumeException(VolumeError.Invalid, $"{what}: {error}");
        return bytes;
    }

    // ---- volumes and groups ---------------------------------------------------------------

    public Task<VolumeInfo> CreateVolumeAsync(string poolName, CreateVolumeRequest request)
    {
        string what = $"volume {poolName}/{request.Name}";
        long size = ParseSize(request.Size, $"{what}: size");
        if (Ceph.Contains(poolName)) return Task.Run(() => Ceph.CreateVolume(poolName, request.Name ?? "", size, request));
        Pool pool = Get(poolName);
        long reserve = string.IsNullOrEmpty(request.Reserve) ? 0 : ParseSize(request.Reserve, $"{what}: reservation");
        VolumeFeatures features = VolumeFeatureRequest.Parse(request.Compress, request.Checksum, what) with { Encrypted = request.Encrypt };
        VolumeKeySource? key = VolumeFeatureRequest.Key(request.KeyFile, request.KeyCommand, what);
        return pool.CreateVolumeAsync(request.Name ?? "", size, reserve, string.IsNullOrEmpty(request.Group) ? null : request.Group, features, key);
    }

    public async Task<VolumeInfo> ResizeVolumeAsync(string poolName, string volume, ResizeVolumeRequest request)
    {
        long size = ParseSize(request.Size, $"volume {poolName}/{volume}: size");
        await WaitDetachedAsync(poolName, volume).ConfigureAwait(false);
        if (Ceph.Contains(poolName))
        {
            RefuseExported(poolName, volume, "resized");
            return await Task.Run(() => Ceph.ResizeVolume(poolName, volume, size, request.Force)).ConfigureAwait(false);
        }
        Pool pool = Get(poolName);
        return await pool.ResizeVolumeAsync(volume, size, request.Force).ConfigureAwait(false);
    }

    public Task<VolumeInfo> SnapshotAsync(string poolName, string volume, SnapshotRequest request)
    {
        if (Ceph.Contains(poolName)) return Task.Run(() => Ceph.Snapshot(poolName, volume, request.Name ?? "", ExportedImage(poolName, volume)));
        return Get(poolName).SnapshotAsync(volume, request.Name ?? "");
    }

    /// <summary>The open RBD image of an exported Ceph volume (it holds the image's exclusive lock), or null.</summary>
    private Rbd.RbdImage? ExportedImage(string poolName, string volume)
    {
        string key = $"{poolName}/{volume}";
        lock (_lock)
        {
            return _exports.FirstOrDefault(e => e.Key == key && !e.Detached)?.Inner is QosBlockDevice { Inner: Rbd.RbdBlockDevice rbd } ? rbd.Image : null;
        }
    }

    public Task<VolumeInfo> CloneAsync(string poolName, string snapshot, CloneRequest request)
    {
        if (Ceph.Contains(poolName))
        {
            if (!string.IsNullOrEmpty(request.Reserve) || !string.IsNullOrEmpty(request.Group))
                throw new VolumeException(VolumeError.Invalid, $"volume {poolName}/{request.Name}: a Ceph pool has no reservations or groups (--reserve, --group)");
            return Task.Run(() => Ceph.Clone(poolName, snapshot, request.Name ?? ""));
        }
        Pool pool = Get(poolName);
        string what = $"volume {poolName}/{request.Name}";
        long reserve = string.IsNullOrEmpty(request.Reserve) ? 0 : ParseSize(request.Reserve, $"{what}: reservation");
        return pool.CloneAsync(snapshot, request.Name ?? "", reserve, string.IsNullOrEmpty(request.Group) ? null : request.Group);
    }

    /// <summary>Takes an existing RBD image of a Ceph pool's cluster as a volume (<see cref="CephPools.Adopt"/>).</summary>
    public Task<VolumeInfo> AdoptVolumeAsync(string poolName, string volume, AdoptVolumeRequest request)
    {
        if (!Ceph.Contains(poolName))
        {
            Get(poolName); // an unknown or failed pool is refused as such
            throw new VolumeException(VolumeError.Invalid, $"pool {poolName} is not backed by Ceph: adopt takes an existing RBD image; for a disk image use `edgeblock image import`");
        }
        RefuseExported(poolName, request.Image ?? "", "adopted");
        return Task.Run(() => Ceph.Adopt(poolName, volume, request.Image ?? ""));
    }

    public async Task DeleteVolumeAsync(string poolName, string volume)
    {
        await WaitDetachedAsync(poolName, volume).ConfigureAwait(false);
        if (Ceph.Contains(poolName))
        {
            RefuseExported(poolName, volume, "deleted");
            await Task.Run(() => Ceph.DeleteVolume(poolName, volume)).ConfigureAwait(false);
            return;
        }
        Pool pool = Get(poolName);
        bool copyStopped = await Images.StopAttachAsync(poolName, volume).ConfigureAwait(false);
        try
        {
            await pool.DeleteVolumeAsync(volume).ConfigureAwait(false);
        }
        catch (VolumeException) when (copyStopped)
        {
            Images.ResumeAttached(pool, volume); // refused (exported?): the volume still needs its copy
            throw;
        }
        Qos.Forget(poolName, volume);
        if (VolumeDeleted is { } deleted) await deleted(poolName, volume).ConfigureAwait(false);
    }

    public VolumeInfo GetVolume(string poolName, string volume) =>
        Ceph.Contains(poolName) ? Ceph.GetVolume(poolName, volume, IsExported(poolName, volume)) : Get(poolName).GetVolume(volume);

    private bool IsExported(string poolName, string volume)
    {
        string key = $"{poolName}/{volume}";
        lock (_lock) return _exports.Any(e => e.Key == key && !e.Detached);
    }

    private void RefuseExported(string poolName, string volume, string what)
    {
        if (IsExported(poolName, volume))
            throw new VolumeException(VolumeError.Busy, $"volume {poolName}/{volume} is exported; remove its namespace or vhost export before it is {what}");
    }

    /// <summary>The volumes of one pool, or of every open pool.</summary>
    public IReadOnlyList<VolumeInfo> ListVolumes(string? poolName)
    {
        if (poolName != null && Ceph.Contains(poolName)) return Ceph.ListVolumes(poolName, v => IsExported(poolName, v));
        if (poolName != null) return Get(poolName).ListVolumes();
        List<Pool> pools;
        lock (_lock) pools = _pools.Values.OrderBy(p => p.Name, StringComparer.Ordinal).ToList();
        return pools.SelectMany(p => p.ListVolumes())
            .Concat(Ceph.Names().Where(c => !Ceph.IsDegraded(c)).Order(StringComparer.Ordinal) // a degraded one is listed by name, refused naming why
                .SelectMany(c => Ceph.ListVolumes(c, v => IsExported(c, v)))).ToList();
    }

    public IReadOnlyList<GroupInfo> ListGroups(string poolName) => Get(poolName).ListGroups();

    public Task<GroupInfo> SetGroupQuotaAsync(string poolName, string group, SetGroupQuotaRequest request)
    {
        Pool pool = Get(poolName);
        long? quota = string.IsNullOrEmpty(request.Quota) || request.Quota.Equals("none", StringComparison.OrdinalIgnoreCase)
            ? null : ParseSize(request.Quota, $"group {poolName}/{group}: quota");
        return pool.SetGroupQuotaAsync(group, quota);
    }

    // ---- exports ----------------------------------------------------------------------------

    /// <summary>The UUID a namespace of this volume carries (the volume's, stable for its life).</summary>
    public Guid VolumeUuid(string poolName, string volume) => GetVolume(poolName, volume).Uuid;

    /// <summary>
    /// Opens a volume for a namespace. Refused when it is exported already (once per volume), when it
    /// is a snapshot, and when <paramref name="uuid"/> is not the volume's.
    /// </summary>
    public VolumeExport Export(string poolName, string volume, Guid? uuid)
    {
        bool ceph = Ceph.Contains(poolName);
        Pool? pool = ceph ? null : Get(poolName);
        string key = $"{poolName}/{volume}";
        lock (_lock)
        {
            if (_exports.Any(e => e.Key == key && !e.Detached) || !_opening.Add(key))
                throw new VolumeException(VolumeError.Busy, $"volume {key} is already exported; a volume is exported as one namespace (remove that one first)");
        }
        // Opened outside the lock: an RBD image's open and exclusive lock wait on its cluster, which may be slow or gone,
        // and must not hold up the other pools' calls. The key reserved above keeps a second export of it out meanwhile.
        EdgeBlock.Storage.IBlockDevice? opened = null;
        try
        {
            VolumeInfo info;
            if (pool != null) info = pool.GetVolume(volume);
            else (opened, info) = Ceph.OpenForExport(poolName, volume); // with its exclusive lock: another daemon serving it is refused, named
            if (info.IsSnapshot) throw new VolumeException(VolumeError.Invalid, $"{key} is a read-only snapshot; clone it (edgeblock volume clone) and export the clone");
            if (uuid is { } u && u != info.Uuid)
                throw new VolumeException(VolumeError.Invalid, $"UUID {u} is not volume {key}'s ({info.Uuid}); a volume's namespace carries the volume's UUID (leave the UUID out)");
            opened ??= pool!.OpenVolume(volume);
            var device = new QosBlockDevice(opened, Qos.Flow(poolName, volume, info.Group));
            var export = new VolumeExport(device, poolName, volume, info.Uuid, Closed);
            lock (_lock)
            {
                _opening.Remove(key);
                _exports.Add(export);
            }
            return export;
        }
        catch
        {
            lock (_lock) _opening.Remove(key);
            opened?.DisposeAsync().AsTask().GetAwaiter().GetResult(); // closes the image, releasing its lock
            throw;
        }
    }

    // A detached export drains, then flushes before it closes: the flush gets this much on top of the drain.
    private static readonly TimeSpan FlushAllowance = TimeSpan.FromSeconds(5);

    private void Closed(VolumeExport export)
    {
        lock (_lock) _exports.Remove(export);
    }

    /// <summary>
    /// Waits for exports of a volume whose namespace or vhost export is already gone to close: at once when no
    /// command was inside, else when the last one finished (<see cref="Management.DeviceTeardown"/>; its bounded
    /// wait plus the final flush at most).
    /// </summary>
    private async Task WaitDetachedAsync(string poolName, string volume)
    {
        string key = $"{poolName}/{volume}";
        Task[] closing;
        lock (_lock) closing = _exports.Where(e => e.Key == key && e.Detached).Select(e => e.Closed).ToArray();
        if (closing.Length == 0) return;
        try
        {
            await Task.WhenAll(closing).WaitAsync(Management.DeviceTeardown.DefaultMaxWait + FlushAllowance).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // The pool refuses the change as Busy, naming the volume.
        }
    }

    /// <summary>
    /// At start: a volume namespace carries its volume's UUID. Sets it where it is missing or
    /// differs (a hand-edited config); true when the state changed. Pools that did not open are left alone.
    /// </summary>
    public bool AssignVolumeUuids(DesiredState state)
    {
        bool changed = false;
        foreach (var s in state.Subsystems.Where(s => s != null))
        {
            foreach (var ns in (s.Namespaces ?? []).Where(n => n != null))
            {
                if (!BackendSpec.TryParse(ns.Backend, out var backend, out _) || backend.Kind != BackendKind.Volume) continue;
                Guid uuid;
                try
                {
                    uuid = VolumeUuid(backend.PoolName, backend.VolumeName);
                }
                catch (VolumeException)
                {
                    continue; // refused when the engine opens it, with the message
                }
                if (ns.Uuid == uuid) continue;
                if (ns.Uuid != null) _logger.LogWarning("subsystem {Nqn} namespace {Nsid}: UUID {Old} is not volume {Volume}'s; using the volume's {Uuid}", s.Nqn, ns.Nsid, ns.Uuid, backend.Path, uuid);
                ns.Uuid = uuid;
                changed = true;
            }
        }
        return changed;
    }

    /// <summary>A refusal as the API's problem: 400 invalid, 404 unknown, 409 exists/busy, 507 no space, 500 I/O.</summary>
    public static ManagementException Refusal(VolumeException e) => e.Error switch
    {
        VolumeError.Invalid => ManagementException.Invalid(e.Message),
        VolumeError.NotFound => ManagementException.NotFound(e.Message),
        VolumeError.AlreadyExists => ManagementException.Conflict(e.Message),
        VolumeError.Busy => new ManagementException(409, "busy", e.Message),
        VolumeError.NoSpace => new ManagementException(507, "not enough space", e.Message),
        _ => new ManagementException(500, "pool I/O error", e.Message),
    };

    /// <summary>Closes every pool (each commits first). Namespaces must be closed before.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await Images.StopAllAsync().ConfigureAwait(false); // before the pools close: an import removes its volume
        await Scrubs.StopAllAsync().ConfigureAwait(false); // before the pools close: each saves its place
        List<Pool> pools;
        lock (_lock)
        {
            pools = _pools.Values.ToList();
            _pools.Clear();
            if (_exports.Count > 0) _logger.LogWarning("closing pools with {Count} volume(s) still exported", _exports.Count);
        }
        Ceph.Dispose();
        foreach (Pool pool in pools)
        {
            try
            {
                await pool.DisposeAsync().ConfigureAwait(false);
                _logger.LogInformation("pool {Pool} closed", pool.Name);
            }
            catch (Exception e)
            {
                _logger.LogError(e, "pool {Pool}: closing failed", pool.Name);
            }
        }
        Qos.Dispose();
    }
}
