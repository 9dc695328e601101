using EdgeBlock.Storage;
using Microsoft.Extensions.Logging;
using RocksDbSharp;

namespace EdgeBlock.Volumes;

/// <summary>
/// A pool: several drives, one RocksDB of metadata, and the volumes carved from them.
/// Data goes straight to the drives in extents; which extent holds what lives in RocksDB and,
/// while running, in memory (the I/O path never reads RocksDB). Every metadata change reaches
/// RocksDB in one atomic batch at the next commit: a host Flush, a management operation or
/// the background timer. A commit first flushes the drives, so metadata never points at data
/// that could still be lost.
/// </summary>
public sealed partial class Pool : IAsyncDisposable
{
    private readonly RocksDb _db;
    private readonly PoolOptions _options;
    private readonly ILogger _logger;
    private readonly List<PoolDrive> _drives = [];
    private readonly Dictionary<string, Volume> _volumes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, GroupState> _groups = new(StringComparer.Ordinal);
    private PoolRecord _record;
    private int _disposed;

    /// <summary>Guards maps (install/remove), refcounts, free lists, records and space counters.</summary>
    internal readonly object MetaLock = new();

    private Pool(RocksDb db, PoolRecord record, string metadataDirectory, PoolOptions options)
    {
        _db = db;
        _record = record;
        _options = options;
        _logger = options.Logger;
        MetadataDirectory = metadataDirectory;
        ExtentSize = record.ExtentSize;
        BlocksPerExtent = ExtentSize / PoolLayout.BlockSize;
        _commitTimer = options.CommitInterval > TimeSpan.Zero ? new Timer(_ => BackgroundCommit(), null, options.CommitInterval, options.CommitInterval) : null;
    }

    public string Name => _record.Name;
    public Guid Id => _record.Id;
    public string MetadataDirectory { get; }
    public int ExtentSize { get; }
    internal int BlocksPerExtent { get; }

    /// <summary>Creates a pool over new drives: labels them and writes the first metadata.</summary>
    /// <param name="force">Take drives that carry another pool's label (for these drives only).</param>
    public static async Task<Pool> CreateAsync(string name, string metadataDirectory, IReadOnlyList<PoolDriveSpec> drives, PoolOptions? options = null, bool force = false)
    {
        options ??= new PoolOptions();
        PoolNames.CheckPool(name);
        if (!PoolLayout.IsValidExtentSize(options.ExtentSize))
        {
            throw new VolumeException(VolumeError.Invalid, $"extent size {options.ExtentSize}: it must be a power of two from {PoolLayout.MinExtentSize / 1024}K to {PoolLayout.MaxExtentSize >> 20}M");
        }
        if (drives.Count == 0) throw new VolumeException(VolumeError.Invalid, $"pool {name}: give at least one drive");
        if (Directory.Exists(metadataDirectory) && Directory.EnumerateFileSystemEntries(metadataDirectory).Any())
        {
            throw new VolumeException(VolumeError.AlreadyExists, $"pool {name}: metadata directory {metadataDirectory} is not empty (a pool of that name exists?)");
        }
        var duplicates = drives.GroupBy(d => Path.GetFullPath(d.Path)).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        if (duplicates.Count > 0) throw new VolumeException(VolumeError.Invalid, $"pool {name}: drive {duplicates[0]} is given twice");

        Directory.CreateDirectory(metadataDirectory);
        var record = new PoolRecord(name, Guid.NewGuid(), PoolLayout.FormatVersion, options.ExtentSize, 1, DateTimeOffset.UtcNow);
        RocksDb db = OpenDb(metadataDirectory, create: true, readOnly: false);
        var pool = new Pool(db, record, metadataDirectory, options);
        try
        {
            foreach (PoolDriveSpec spec in drives)
            {
                await pool.AttachNewDriveAsync(spec, force);
            }
            lock (pool.MetaLock) pool._poolRecordDirty = true;
            await pool.CommitOrThrowAsync("create the pool");
            pool._logger.LogInformation("pool {Pool} created: {Drives} drive(s), {Size} bytes, extent {Extent} bytes", name, drives.Count, pool.Info().SizeBytes, options.ExtentSize);
            return pool;
        }
        catch
        {
            await pool.DisposeAsync();
            Directory.Delete(metadataDirectory, recursive: true);
            throw;
        }
    }

    /// <summary>
    /// Starts loading RocksDB's native library on a pool thread and returns at once. Loading it (tens of MiB of code,
    /// its delegates bound at run time) took 0.3-0.5 s of a daemon's start on a small box; started first, it overlaps
    /// with the rest of start-up, and the first <see cref="Open(string, PoolOptions?)"/> waits only for what is left.
    /// </summary>
    public static void PreloadNativeLibrary() =>
        ThreadPool.UnsafeQueueUserWorkItem(static _ =>
        {
            // A daemon that serves no pool may run without the library (the kernel engine's self-contained copy has
            // none): failing here would end the process. The first Open meets the same error and reports it.
            try { GC.KeepAlive(Native.Instance); }
            catch (TypeInitializationException) { }
        }, null);

    /// <summary>Opens an existing pool: metadata, then every drive (each must carry this pool's label).</summary>
    public static Pool Open(string metadataDirectory, PoolOptions? options = null) => Open(metadataDirectory, options, readOnly: false);

    private static Pool Open(string metadataDirectory, PoolOptions? options, bool readOnly)
    {
        options ??= new PoolOptions();
        if (!File.Exists(Path.Combine(metadataDirectory, "CURRENT")))
        {
            throw new VolumeException(VolumeError.NotFound, $"no pool metadata in {metadataDirectory}");
        }
        RocksDb db = OpenDb(metadataDirectory, create: false, readOnly);
        Pool? pool = null;
        try
        {
            byte[]? raw = db.Get(MetadataKeys.PoolKey());
            if (raw is null) throw new VolumeException(VolumeError.Io, $"{metadataDirectory}: the pool record is missing (metadata of an unfinished pool create?)");
            var record = RecordJson.Decode<PoolRecord>(raw);
            if (record.FormatVersion != PoolLayout.FormatVersion)
            {
                throw new VolumeException(VolumeError.Io, $"pool {record.Name} has format version {record.FormatVersion}; this EdgeBlock reads version {PoolLayout.FormatVersion}");
            }
            pool = new Pool(db, record, metadataDirectory, options);
            pool.Load();
            return pool;
        }
        catch
        {
            if (pool is not null) pool.DisposeAsync().AsTask().GetAwaiter().GetResult();
            else db.Dispose();
            throw;
        }
    }

    private static RocksDb OpenDb(string directory, bool create, bool readOnly)
    {
        var options = new DbOptions()
            .SetCreateIfMissing(create)
            .SetParanoidChecks(true)
            // A torn tail of the WAL (power loss mid-write) is cut off; everything synced before it is kept.
            .SetWalRecoveryMode(Recovery.PointInTime)
            .SetKeepLogFileNum(4)
            .SetInfoLogLevel(InfoLogLevel.Warn);
        try
        {
            // Read-only (offline check) replays the WAL in memory and writes nothing to the directory.
            return readOnly ? RocksDb.OpenReadOnly(options, directory, false) : RocksDb.Open(options, directory);
        }
        catch (RocksDbException e) when (e.Message.Contains("lock", StringComparison.OrdinalIgnoreCase))
        {
            throw new VolumeException(VolumeError.Busy, $"pool metadata in {directory} is in use by another process (a running daemon?): {e.Message}", e);
        }
        catch (RocksDbException e)
        {
            throw new VolumeException(VolumeError.Io, $"pool metadata in {directory} cannot be opened: {e.Message}", e);
        }
    }

    /// <summary>Adds a drive to a running pool; new allocations can use it at once.</summary>
    /// <param name="force">Take the drive even if it carries another pool's label.</param>
    public async Task AddDriveAsync(PoolDriveSpec spec, bool force = false)
    {
        string full = Path.GetFullPath(spec.Path);
        lock (MetaLock)
        {
            if (_drives.Any(d => Path.GetFullPath(d.Record.Path) == full))
            {
                throw new VolumeException(VolumeError.AlreadyExists, $"pool {Name}: {full} is already drive {_drives.First(d => Path.GetFullPath(d.Record.Path) == full).Index}");
            }
        }
        await AttachNewDriveAsync(spec, force);
        await CommitOrThrowAsync($"add drive {full}");
        _logger.LogInformation("pool {Pool}: drive {Path} added", Name, full);
    }

    private async Task AttachNewDriveAsync(PoolDriveSpec spec, bool force)
    {
        string full = Path.GetFullPath(spec.Path);
        IBlockDevice device = OpenDevice(full, spec.SizeBytes ?? 0);
        try
        {
            using var probe = new AlignedBuffer(PoolLayout.LabelSize);
            BlockStatus status = await device.ReadAsync(0, probe.Memory);
            if (status != BlockStatus.Success) throw new VolumeException(VolumeError.Io, $"drive {full}: reading its first block failed ({status})");
            DriveLabel? existing = PoolLayout.ParseLabel(probe.Span, out _);
            if (existing is not null && !force)
            {
                throw new VolumeException(VolumeError.Busy, $"drive {full} belongs to pool {existing.PoolId} (drive {existing.Index}); use --force to overwrite it");
            }
            long bytes = device.BlockCount * device.BlockSize;
            long extents = PoolLayout.ExtentsOn(bytes, ExtentSize);
            if (extents < 1)
            {
                throw new VolumeException(VolumeError.Invalid, $"drive {full} has {bytes} bytes; a drive needs at least {PoolLayout.DataOffset + ExtentSize} bytes");
            }
            int index;
            lock (MetaLock) index = _drives.Count == 0 ? 0 : _drives.Max(d => d.Index) + 1;
            var record = new DriveRecord(index, Guid.NewGuid(), full, extents, DateTimeOffset.UtcNow);
            byte[] label = PoolLayout.FormatLabel(new DriveLabel(Id, record.Id, index, ExtentSize, extents));
            label.CopyTo(probe.Span);
            status = await device.WriteAsync(0, probe.Memory, fua: true);
            if (status == BlockStatus.Success) status = await device.FlushAsync();
            if (status != BlockStatus.Success) throw new VolumeException(VolumeError.Io, $"drive {full}: writing its label failed ({status})");
            var drive = new PoolDrive(record, device, ExtentSize);
            drive.RebuildFreeList(new HashSet<long>());
            lock (MetaLock)
            {
                _drives.Add(drive);
                PublishDrives();
                _freeExtents += drive.FreeCount;
                _dirtyDrives.Add(index);
            }
        }
        catch
        {
            await device.DisposeAsync();
            throw;
        }
    }

    private IBlockDevice OpenDevice(string path, long size)
    {
        try
        {
            IBlockDevice device = _options.OpenDrive(path, size);
            if (device.BlockSize > PoolLayout.BlockSize)
            {
                device.DisposeAsync().AsTask().GetAwaiter().GetResult();
                throw new VolumeException(VolumeError.Invalid, $"drive {path} has {device.BlockSize}-byte blocks; pools need drives with blocks of at most {PoolLayout.BlockSize} bytes");
            }
            return device;
        }
        catch (VolumeException) { throw; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new VolumeException(VolumeError.Io, $"drive {path}: {e.Message}", e);
        }
    }

    /// <summary>Reads every record into memory and checks each drive's label.</summary>
    private void Load()
    {
        using (Iterator it = _db.NewIterator())
        {
            for (it.Seek([MetadataKeys.Drive]); it.Valid() && it.GetKeySpan()[0] == MetadataKeys.Drive; it.Next())
            {
                var record = RecordJson.Decode<DriveRecord>(it.GetValueSpan());
                _drives.Add(new PoolDrive(record, OpenLabelledDrive(record), ExtentSize));
            }
            PublishDrives();
            for (it.Seek([MetadataKeys.Group]); it.Valid() && it.GetKeySpan()[0] == MetadataKeys.Group; it.Next())
            {
                var record = RecordJson.Decode<GroupRecord>(it.GetValueSpan());
                _groups[record.Name] = new GroupState(record);
            }
            var byId = new Dictionary<long, Volume>();
            for (it.Seek([MetadataKeys.Volume]); it.Valid() && it.GetKeySpan()[0] == MetadataKeys.Volume; it.Next())
            {
                var volume = new Volume(RecordJson.Decode<VolumeRecord>(it.GetValueSpan()), ExtentSize);
                _volumes[volume.Name] = volume;
                byId[volume.Id] = volume;
            }
            for (it.Seek([MetadataKeys.Map]); it.Valid() && it.GetKeySpan()[0] == MetadataKeys.Map; it.Next())
            {
                var (volumeId, extent) = MetadataKeys.ParseMapKey(it.GetKeySpan());
                if (!byId.TryGetValue(volumeId, out Volume? volume) || extent >= volume.Map.Length)
                {
                    throw new VolumeException(VolumeError.Io, $"pool {Name}: extent record for volume {volumeId} extent {extent} has no volume (run `edgeblock pool check {Name}`)");
                }
                ExtentMapEntry entry = ExtentRecord.Decode(it.GetValueSpan(), ExtentSize);
                volume.Map.Set(extent, entry);
                volume.Allocated++;
            }
            for (it.Seek([MetadataKeys.Refcount]); it.Valid() && it.GetKeySpan()[0] == MetadataKeys.Refcount; it.Next())
            {
                var (driveIndex, extent) = MetadataKeys.ParseRefcountKey(it.GetKeySpan());
                PoolDrive? drive = driveIndex >= 0 && driveIndex < _drives.Count ? DriveAt(driveIndex) : null;
                if (drive is null || extent >= drive.ExtentCount)
                {
                    throw new VolumeException(VolumeError.Io, $"pool {Name}: refcount for drive {driveIndex} extent {extent} is outside the pool (run `edgeblock pool check {Name}`)");
                }
                drive.Refs[extent] = BitConverter.ToInt32(it.GetValueSpan());
            }
            LoadChunks(it, byId);
            LoadOrigins(it, byId);
            if (_db.Get(MetadataKeys.ScrubKey()) is { } scrub) _scrub = RecordJson.Decode<ScrubState>(scrub);
        }
        foreach (PoolDrive drive in _drives) drive.RebuildFreeList(new HashSet<long>());
        RecountSpace();
        SettleContainers();
        ReleaseEmptyMappings();
    }

    /// <summary>
    /// A crash between mapping an extent and the first write's commit leaves a mapping with no
    /// valid block: it reads as zeroes either way, so give the extent back (at the next commit).
    /// </summary>
    private void ReleaseEmptyMappings()
    {
        lock (MetaLock)
        {
            int released = 0;
            foreach (Volume v in _volumes.Values)
            {
                foreach (var (i, e) in v.Map.Entries())
                {
                    if (!e.NoneValid()) continue;
                    RemoveMapping(v, i);
                    released++;
                }
            }
            if (released > 0) _logger.LogInformation("pool {Pool}: {Count} extent(s) mapped but never written before the last shutdown are released", Name, released);
        }
    }

    private IBlockDevice OpenLabelledDrive(DriveRecord record)
    {
        IBlockDevice device;
        try
        {
            device = OpenDevice(record.Path, 0);
        }
        catch (VolumeException e) when (e.InnerException is FileNotFoundException)
        {
            throw new VolumeException(VolumeError.NotFound, $"pool {Name}: drive {record.Index} ({record.Path}) is missing; attach it and start again", e);
        }
        using var buffer = new AlignedBuffer(PoolLayout.LabelSize);
        BlockStatus status = device.ReadAsync(0, buffer.Memory).AsTask().GetAwaiter().GetResult();
        string problem = "";
        DriveLabel? label = status == BlockStatus.Success ? PoolLayout.ParseLabel(buffer.Span, out problem) : null;
        string? refusal = status != BlockStatus.Success ? $"reading its label failed ({status})"
            : label is null ? problem
            : label.PoolId != Id ? $"it belongs to another pool ({label.PoolId}), not {Name} ({Id})"
            : label.DriveId != record.Id || label.Index != record.Index ? $"it is drive {label.Index} ({label.DriveId}) of this pool, expected drive {record.Index} ({record.Id})"
            : label.ExtentSize != ExtentSize || label.ExtentCount != record.ExtentCount ? "its label's geometry differs from the metadata"
            : device.BlockCount * device.BlockSize < PoolLayout.DataOffset + record.ExtentCount * ExtentSize ? "it is smaller than when it was added"
            : null;
        if (refusal is not null)
        {
            device.DisposeAsync().AsTask().GetAwaiter().GetResult();
            throw new VolumeException(VolumeError.Io, $"pool {Name}: drive {record.Index} ({record.Path}) refused: {refusal}");
        }
        return device;
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        if (_commitTimer is not null) await _commitTimer.DisposeAsync();
        while (Volatile.Read(ref _compacting) != 0) await Task.Delay(5); // it stops between two chunks
        try
        {
            if (_drives.Count > 0) await CommitAsync();
        }
        catch (Exception e)
        {
            _logger.LogError(e, "pool {Pool}: final commit failed", Name);
        }
        await _commitGate.WaitAsync();
        foreach (PoolDrive drive in _drives) await drive.Device.DisposeAsync();
        _db.Dispose();
        ChunkBuffers.Dispose();
        foreach (Volume v in _volumes.Values)
        {
            v.Cipher?.Dispose(); // zeroes the keys
            v.Origin?.Source?.Dispose();
        }
    }

    /// <summary>Abandons the pool without committing, as a crash would (tests).</summary>
    internal void Abandon()
    {
        Interlocked.Exchange(ref _disposed, 1);
        _commitTimer?.Dispose();
        _db.Dispose();
    }
}
