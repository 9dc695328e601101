using EdgeBlock.Storage;
using Microsoft.Extensions.Logging;
using RocksDbSharp;

namespace EdgeBlock.Volumes;

/// <summary>
/// Commits: everything changed in memory since the last commit goes to RocksDB in one atomic,
/// synced batch, after the drives have been flushed. Concurrent flush requests share one
/// commit (group commit): a request is satisfied by any commit that started after it arrived.
/// </summary>
public sealed partial class Pool
{
    private readonly SemaphoreSlim _commitGate = new(1, 1);
    private readonly Timer? _commitTimer;
    private readonly HashSet<(int Drive, long Extent)> _dirtyRefs = [];
    private readonly HashSet<int> _dirtyDrives = [];
    private readonly HashSet<string> _dirtyGroups = new(StringComparer.Ordinal);
    private readonly HashSet<long> _dirtyVolumeRecords = [];
    private readonly List<Volume> _deletedVolumes = [];
    private bool _poolRecordDirty;
    private long _flushRequests;
    private long _flushedUpTo;
    private long _commits;
    private long _metadataBytes;
    private static readonly WriteOptions SyncWrite = new WriteOptions().SetSync(true);

    /// <summary>
    /// Makes every write completed before this call durable, with the metadata that finds it.
    /// Failures are returned, not thrown (this is the I/O path of a host Flush).
    /// </summary>
    public async ValueTask<BlockStatus> CommitAsync()
    {
        long ticket = Interlocked.Increment(ref _flushRequests);
        await _commitGate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (Volatile.Read(ref _flushedUpTo) >= ticket) return BlockStatus.Success;
            long upTo = Volatile.Read(ref _flushRequests);
            Captured captured = Capture();
            try
            {
                foreach (PoolDrive drive in _drives)
                {
                    BlockStatus status = await drive.Device.FlushAsync().ConfigureAwait(false);
                    if (status != BlockStatus.Success)
                    {
                        _logger.LogError("pool {Pool}: flushing drive {Drive} ({Path}) failed: {Status}", Name, drive.Index, drive.Record.Path, status);
                        Restore(captured);
                        return status;
                    }
                }
                if (captured.Batch.Count() > 0) _db.Write(captured.Batch, SyncWrite);
            }
            catch (Exception e) when (e is RocksDbException or IOException)
            {
                _logger.LogError(e, "pool {Pool}: metadata commit failed", Name);
                Restore(captured);
                return BlockStatus.WriteError;
            }
            finally
            {
                captured.Batch.Dispose();
            }
            lock (MetaLock)
            {
                foreach (FreeingExtent f in captured.Freeing) f.Durable = true;
                ChunkCommitDone(captured.Chunks);
                ReclaimFreed();
            }
            Interlocked.Add(ref _metadataBytes, captured.Bytes);
            Interlocked.Increment(ref _commits);
            Volatile.Write(ref _flushedUpTo, upTo);
            return BlockStatus.Success;
        }
        finally
        {
            _commitGate.Release();
        }
    }

    /// <summary>Commit for management operations: a failure becomes an exception naming the operation.</summary>
    private async Task CommitOrThrowAsync(string what)
    {
        BlockStatus status = await CommitAsync();
        if (status != BlockStatus.Success)
        {
            throw new VolumeException(VolumeError.Io, $"pool {Name}: could not {what}: the metadata commit failed ({status}); see the daemon log");
        }
    }

    private void BackgroundCommit()
    {
        if (Volatile.Read(ref _disposed) != 0) return;
        bool dirty;
        lock (MetaLock)
        {
            // A running scrub's place counts: on an idle pool it is saved too, so a crash loses at most one interval of it.
            dirty = _dirtyRefs.Count > 0 || _freeing.Count > 0 || _dirtyVolumeRecords.Count > 0 || _poolRecordDirty || _scrubDirty
                || _volumes.Values.Any(v => !v.DirtyExtents.IsEmpty) || ChunksDirty() || OriginsDirty();
        }
        if (dirty) _ = CommitAsync().AsTask();
    }

    private sealed record Captured(WriteBatch Batch, long Bytes, List<FreeingExtent> Freeing,
        List<(Volume Volume, long Extent)> Extents, List<(int, long)> Refs, List<long> VolumeRecords, List<int> Drives, List<string> Groups, bool PoolRecord,
        ChunkCapture Chunks, OriginCapture Origins);

    /// <summary>Builds the batch from the current in-memory state of everything marked dirty.</summary>
    private Captured Capture()
    {
        var batch = new WriteBatch();
        long bytes = 0;
        void Put(byte[] key, byte[] value) { batch.Put(key, value); bytes += key.Length + value.Length; }
        void Delete(byte[] key) { batch.Delete(key); bytes += key.Length; }

        lock (MetaLock)
        {
            // Origin bits before the map: writers set a bit only after their block's map change (no lock), so the map
            // captured after a bit carries every change that bit stands for; the other order could save a bit
            // without the data it points the volume at.
            OriginCapture origins = CaptureOrigins(batch, ref bytes);
            var extents = new List<(Volume, long)>();
            foreach (Volume v in _volumes.Values.Concat(_deletedVolumes))
            {
                var seen = new HashSet<long>();
                while (v.DirtyExtents.TryDequeue(out long index))
                {
                    if (!seen.Add(index)) continue;
                    extents.Add((v, index));
                    ExtentMapEntry? entry = v.Map[index];
                    if (entry is null || v.Deleted)
                    {
                        Delete(MetadataKeys.MapKey(v.Id, index));
                    }
                    else
                    {
                        Interlocked.Exchange(ref entry.Dirty, 0);
                        Put(MetadataKeys.MapKey(v.Id, index), ExtentRecord.Encode(entry, ExtentSize));
                    }
                }
            }
            ChunkCapture chunks = CaptureChunks(batch, ref bytes);
            _deletedVolumes.RemoveAll(v => v.DirtyExtents.IsEmpty && (!v.UsesChunks || (v.Drops.IsEmpty && v.DirtyGroups.IsEmpty)));
            foreach (var (driveIndex, extent) in _dirtyRefs)
            {
                int refs = DriveAt(driveIndex).Refs[extent];
                if (refs == 0) Delete(MetadataKeys.RefcountKey(driveIndex, extent));
                else Put(MetadataKeys.RefcountKey(driveIndex, extent), BitConverter.GetBytes(refs));
            }
            foreach (long id in _dirtyVolumeRecords)
            {
                Volume? v = _volumes.Values.FirstOrDefault(x => x.Id == id);
                if (v is null) Delete(MetadataKeys.VolumeKey(id));
                else Put(MetadataKeys.VolumeKey(id), RecordJson.Encode(v.Record));
            }
            foreach (int index in _dirtyDrives) Put(MetadataKeys.DriveKey(index), RecordJson.Encode(DriveAt(index).Record));
            foreach (string name in _dirtyGroups)
            {
                if (_groups.TryGetValue(name, out GroupState? g)) Put(MetadataKeys.GroupKey(name), RecordJson.Encode(g.Record));
                else Delete(MetadataKeys.GroupKey(name));
            }
            if (_poolRecordDirty) Put(MetadataKeys.PoolKey(), RecordJson.Encode(_record));
            if (_scrubDirty && _scrub is not null) Put(MetadataKeys.ScrubKey(), RecordJson.Encode(_scrub));
            _scrubDirty = false;

            var captured = new Captured(batch, bytes, _freeing.Where(f => !f.Durable).ToList(), extents,
                [.. _dirtyRefs], [.. _dirtyVolumeRecords], [.. _dirtyDrives], [.. _dirtyGroups], _poolRecordDirty, chunks, origins);
            _dirtyRefs.Clear();
            _dirtyVolumeRecords.Clear();
            _dirtyDrives.Clear();
            _dirtyGroups.Clear();
            _poolRecordDirty = false;
            return captured;
        }
    }

    /// <summary>A failed commit marks everything it carried dirty again, so the next one retries it.</summary>
    private void Restore(Captured c)
    {
        lock (MetaLock)
        {
            foreach (var (v, index) in c.Extents)
            {
                ExtentMapEntry? entry = v.Map[index];
                if (entry is not null) Interlocked.Exchange(ref entry.Dirty, 0);
                v.MarkDirty(index, entry);
                if (v.Deleted && !_deletedVolumes.Contains(v)) _deletedVolumes.Add(v);
            }
            _dirtyRefs.UnionWith(c.Refs);
            _dirtyVolumeRecords.UnionWith(c.VolumeRecords);
            _dirtyDrives.UnionWith(c.Drives);
            _dirtyGroups.UnionWith(c.Groups);
            _poolRecordDirty |= c.PoolRecord;
            RestoreChunks(c.Chunks);
            RestoreOrigins(c.Origins);
        }
    }
}
