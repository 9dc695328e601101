using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using EdgeBlock.Storage;
using Microsoft.Extensions.Logging;
using RocksDbSharp;

namespace EdgeBlock.Volumes;

/// <summary>
/// Space for chunk volumes. Chunks live in container extents taken from the pool; a volume
/// allocates sectors from a region of a container without a lock and, when it runs out, takes
/// a new region under the metadata lock (a free run in a container with free sectors, else a
/// fresh extent). A chunk's old place is released at the next commit (its last reference
/// gone: the refcounts count how many volumes map a place beyond the first) and its sectors
/// become reusable once that commit is durable and no read uses the container, so metadata
/// on disk never points at sectors that were written again.
/// Nothing of this is stored but the containers ('K' keys) and the chunk map ('C' keys): used
/// sectors and refcounts are rebuilt from the map when the pool opens.
/// </summary>
public sealed partial class Pool
{
    internal readonly ChunkBuffers ChunkBuffers = new();
    private readonly Dictionary<ulong, int> _chunkExtraRefs = [];
    private readonly Queue<ChunkContainer> _partialContainers = new();
    private readonly HashSet<(int Drive, long Extent)> _dirtyContainers = [];
    private List<ulong> _chunkFreesNext = [], _chunkFreesSpare = [];
    private readonly List<(Volume, long)> _captureChunks = [];
    private readonly List<ulong> _chunkFreesDurable = [];
    private readonly HashSet<(long Volume, long Chunk)> _checksumLogged = [];
    private long _checksumErrors;
    private long _containers, _containerUsedSectors;
    private readonly ConcurrentQueue<ulong> _moveDrops = new();

    internal int SectorsPerExtent => ExtentSize / ChunkLayout.SectorSize;

    /// <summary>
    /// Replaced chunks a volume may hold before it asks for a commit (which frees them):
    /// a sixteenth of the pool, at least an extent, at most 64 MiB. This bounds the space
    /// overwrites take beyond the data between two host flushes.
    /// </summary>
    internal long CommitAfterFreeSectors { get; private set; }

    internal bool CommitsOnFreedSpace => _options.CommitOnFreedSpace;

    private int _commitRequested;

    private void SizeCommitAfterFree() =>
        CommitAfterFreeSectors = Math.Clamp(_drives.Sum(d => d.ExtentCount) * SectorsPerExtent / 16, SectorsPerExtent, (64 << 20) / ChunkLayout.SectorSize);

    /// <summary>Chunks in a chunk group: a group covers one extent of the volume's logical space.</summary>
    internal int ChunksPerGroup => ExtentSize / ChunkLayout.ChunkSize;

    /// <summary>Starts a commit in the background unless one asked for this way is still running.</summary>
    internal void RequestCommit()
    {
        if (!_options.CommitOnFreedSpace || Interlocked.Exchange(ref _commitRequested, 1) != 0 || Volatile.Read(ref _disposed) != 0) return;
        _ = Task.Run(async () =>
        {
            try
            {
                await CommitAsync().ConfigureAwait(false);
            }
            finally
            {
                Volatile.Write(ref _commitRequested, 0);
            }
        });
    }

    internal ChunkContainer ContainerOf(ChunkLocation place) =>
        TryContainerOf(place) ?? throw new InvalidOperationException($"chunk at {place} lies in no container");

    /// <summary>The container of a place, or null when it went back to the pool (a reader that looked up a slot just before it was replaced and freed).</summary>
    internal ChunkContainer? TryContainerOf(ChunkLocation place) => Volatile.Read(ref DriveAt(place.Drive).Containers[place.Sector / SectorsPerExtent]);

    /// <summary>
    /// Reads the stored sectors of the chunk at location, the content of slot i of group, into the start of into,
    /// while its container counts the read, so that its sectors are not reused under it. Stale (nothing read) when
    /// the slot no longer holds (location, crc): the chunk was replaced, and perhaps freed, since it was looked up.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    internal async ValueTask<(bool Stale, BlockStatus Status)> ReadStoredSectorsAsync(
        ChunkGroup group, int i, ChunkLocation location, uint crc, Memory<byte> into)
    {
        if (TryContainerOf(location) is not { } container) return (true, default);
        Interlocked.Increment(ref container.InFlight);
        try
        {
            if (group.Read(i) != (location, crc)) return (true, default);
            Memory<byte> sectors = into[..(location.Sectors * ChunkLayout.SectorSize)];
            return (false, await DriveAt(location.Drive).Device.ReadAsync(ChunkLba(location), sectors).ConfigureAwait(false));
        }
        finally
        {
            Interlocked.Decrement(ref container.InFlight);
        }
    }

    /// <summary>Drive LBA of a chunk place.</summary>
    internal long ChunkLba(ChunkLocation place)
    {
        PoolDrive drive = DriveAt(place.Drive);
        return (PoolLayout.DataOffset + place.Sector * ChunkLayout.SectorSize) / drive.Device.BlockSize;
    }

    /// <summary>
    /// Takes sectors contiguous sectors for a chunk of v, charging its group; Success or
    /// CapacityExceeded. The caller gives them back with <see cref="ReleaseUnwritten"/> if the
    /// chunk is never installed.
    /// </summary>
    internal BlockStatus AllocateChunk(Volume v, int sectors, out int drive, out long sector)
    {
        drive = 0;
        sector = 0;
        if (v.ChargedGroup is { } group && !group.TryCharge((long)sectors * ChunkLayout.SectorSize, ExtentSize))
        {
            lock (MetaLock) return RefuseSpace(v);
        }
        while (true)
        {
            ChunkRegion? region = Volatile.Read(ref v.Region);
            int end = 0, start = 0;
            if (region is not null)
            {
                end = Interlocked.Add(ref region.Next, sectors);
                start = end - sectors;
                if (end <= region.End)
                {
                    drive = region.Container.Drive.Index;
                    sector = region.Container.FirstSector + start;
                    return BlockStatus.Success;
                }
            }
            lock (MetaLock)
            {
                // The one allocation that straddled the region's end gives back the sectors it could not use.
                if (region is not null && start < region.End)
                {
                    MarkSectors(region.Container, start, region.End - start, used: false);
                    AfterSectorsFreed(region.Container); // listed for reuse, or given back if that was all it held
                }
                if (ReferenceEquals(v.Region, region))
                {
                    if (region is not null) CloseRegion(region);
                    v.Region = v.Deleted ? null : OpenRegion(v, sectors);
                    if (v.Region is null)
                    {
                        v.ChargedGroup?.TryCharge(-(long)sectors * ChunkLayout.SectorSize, ExtentSize);
                        return v.Deleted ? BlockStatus.NotReady : RefuseSpace(v);
                    }
                }
            }
        }
    }

    /// <summary>Gives back sectors allocated for a chunk that was never installed (its write failed or lost a race).</summary>
    internal void ReleaseUnwritten(Volume v, int drive, long sector, int sectors)
    {
        v.ChargedGroup?.TryCharge(-(long)sectors * ChunkLayout.SectorSize, ExtentSize);
        lock (MetaLock)
        {
            ChunkContainer c = DriveAt(drive).Containers[sector / SectorsPerExtent]!;
            MarkSectors(c, (int)(sector - c.FirstSector), sectors, used: false);
            AfterSectorsFreed(c);
        }
    }

    private void CloseRegion(ChunkRegion region)
    {
        region.Container.Regions--;
        AfterSectorsFreed(region.Container);
    }

    /// <summary>A new region for v (null: the compactor) with at least need sectors, or null when the pool has no room. Under the metadata lock.</summary>
    private ChunkRegion? OpenRegion(Volume? v, int need)
    {
        // Reuse freed space first: it is what keeps overwrites from growing the pool.
        for (int tries = _partialContainers.Count; tries > 0; tries--)
        {
            ChunkContainer c = _partialContainers.Dequeue();
            if (!ReferenceEquals(c.Drive.Containers[c.Extent], c)) continue; // given back to the pool since it was listed
            var (start, length) = c.Draining ? (-1, 0) : c.FindRun(need);
            if (start < 0)
            {
                c.Listed = false; // back in the list when more of it is freed
                continue;
            }
            _partialContainers.Enqueue(c);
            return Claim(c, start, length);
        }
        if (v is null ? _freeExtents - 1 < UnusedReserveTotal() : !CanAllocate(v, newMapping: true)) return null;
        var (drive, extent) = TakeExtent();
        drive.Refs[extent] = 1;
        drive.AllocatedCount++;
        var container = new ChunkContainer(drive, extent, SectorsPerExtent);
        Volatile.Write(ref drive.Containers[extent], container);
        _containers++;
        _dirtyContainers.Add((drive.Index, extent));
        return Claim(container, 0, container.Sectors);
    }

    /// <summary>Marks sectors of a container and keeps the pool's count of used container sectors. Under the metadata lock.</summary>
    private void MarkSectors(ChunkContainer c, int first, int count, bool used)
    {
        int changed = c.Mark(first, count, used);
        _containerUsedSectors += used ? changed : -changed;
    }

    private ChunkRegion Claim(ChunkContainer c, int start, int length)
    {
        MarkSectors(c, start, length, used: true);
        c.Regions++;
        return new ChunkRegion(c, start, start + length);
    }

    /// <summary>Lists a container with free sectors for reuse, or gives an empty one back to the pool. Under the metadata lock.</summary>
    private void AfterSectorsFreed(ChunkContainer c)
    {
        if (c.Draining) return; // the compactor settles it when done: it reads from it until then
        if (c.UsedCount == 0 && c.Regions == 0)
        {
            PoolDrive drive = c.Drive;
            if (!ReferenceEquals(drive.Containers[c.Extent], c)) return;
            Volatile.Write(ref drive.Containers[c.Extent], null);
            _containers--;
            drive.Refs[c.Extent] = 0;
            drive.AllocatedCount--;
            _dirtyContainers.Add((drive.Index, c.Extent));
            // Reusable once the commit that deletes its container key is durable.
            _freeing.Add(new FreeingExtent(drive, c.Extent, []));
            return;
        }
        if (!c.Listed && !c.Draining && c.UsedCount < c.Sectors)
        {
            c.Listed = true;
            _partialContainers.Enqueue(c);
        }
    }

    /// <summary>Extents held back for chunk volumes' reservations (theirs change without the lock, so counted here).</summary>
    private long UnusedChunkReserve()
    {
        long total = 0;
        foreach (Volume v in _volumes.Values)
        {
            if (v.UsesChunks) total += UnusedReserveOf(v);
        }
        return total;
    }

    /// <summary>Stored bytes of a chunk volume counted in extents (for reservations).</summary>
    private long ChunkExtentsOf(Volume v) => ExtentsOf(Interlocked.Read(ref v.StoredSectors) * ChunkLayout.SectorSize);

    // ---- references and release ------------------------------------------------------------

    /// <summary>One more volume maps the chunk at place (snapshot, clone). Under the metadata lock.</summary>
    private void AddChunkRef(ChunkLocation place)
    {
        _chunkExtraRefs[place.Place] = _chunkExtraRefs.GetValueOrDefault(place.Place) + 1;
    }

    /// <summary>Processes the places volumes stopped referencing: the last reference sends a place to be freed by this commit.</summary>
    private void TakeDrops(Volume v, List<ulong> frees)
    {
        while (v.Drops.TryDequeue(out ulong packed)) TakeDrop(packed, frees);
    }

    private void TakeDrop(ulong packed, List<ulong> frees)
    {
        var place = new ChunkLocation(packed);
        if (_chunkExtraRefs.TryGetValue(place.Place, out int extra))
        {
            if (extra == 1) _chunkExtraRefs.Remove(place.Place);
            else _chunkExtraRefs[place.Place] = extra - 1;
            return;
        }
        frees.Add(packed);
    }

    /// <summary>After a durable commit: frees the sectors of released chunks no read still uses. Under the metadata lock.</summary>
    private void ReclaimChunks()
    {
        int kept = 0;
        for (int i = 0; i < _chunkFreesDurable.Count; i++)
        {
            var place = new ChunkLocation(_chunkFreesDurable[i]);
            ChunkContainer c = ContainerOf(place);
            if (Volatile.Read(ref c.InFlight) != 0)
            {
                _chunkFreesDurable[kept++] = _chunkFreesDurable[i];
                continue;
            }
            MarkSectors(c, (int)(place.Sector - c.FirstSector), place.Sectors, used: false);
            AfterSectorsFreed(c);
        }
        _chunkFreesDurable.RemoveRange(kept, _chunkFreesDurable.Count - kept);
    }

    // ---- checksum errors -------------------------------------------------------------------

    /// <summary>Counts a chunk that failed its checksum (or did not decode), logging each chunk once.</summary>
    internal void ReportBadChunk(Volume v, long chunk, ChunkLocation place, string what)
    {
        Interlocked.Increment(ref v.ChecksumErrors);
        Interlocked.Increment(ref _checksumErrors);
        bool first;
        lock (_checksumLogged) first = _checksumLogged.Add((v.Id, chunk));
        if (first)
        {
            long lba = chunk * ChunkLayout.BlocksPerChunk;
            _logger.LogError("pool {Pool}: volume {Volume}: LBAs {First}-{Last} (4 KiB blocks) are unreadable: {What} in the chunk stored at {Place}; reads of them fail with Unrecovered Read Error",
                Name, v.Name, lba, lba + ChunkLayout.BlocksPerChunk - 1, what, place);
        }
    }

    // ---- commit ----------------------------------------------------------------------------

    /// <summary>What a commit carries for chunk volumes, to restore it if the commit fails.</summary>
    private sealed record ChunkCapture(List<(Volume Volume, long Chunk)> Chunks, List<ulong> Frees, List<(int, long)> Containers);

    /// <summary>Where chunk of volume name is stored (tests and scrub); unmapped when never written.</summary>
    internal (ChunkLocation Location, uint Crc) ChunkAt(string name, long chunk)
    {
        Volume v;
        lock (MetaLock) v = Find(name);
        int perGroup = ChunksPerGroup;
        return v.Chunks[chunk / perGroup] is { } group ? group.Read((int)(chunk % perGroup)) : default;
    }

    /// <summary>Puts changed chunk records, container keys and deletions of deleted volumes into the batch. Under the metadata lock.</summary>
    private ChunkCapture CaptureChunks(WriteBatch batch, ref long bytes)
    {
        // Commits run one at a time: the capture lists and buffers are reused (no allocation per chunk written).
        List<(Volume, long)> chunks = _captureChunks;
        chunks.Clear();
        List<ulong> frees = _chunkFreesNext;
        _chunkFreesNext = _chunkFreesSpare;
        _chunkFreesSpare = frees;
        Span<byte> key = stackalloc byte[17];
        Span<byte> value = stackalloc byte[ChunkRecord.Size];
        // Drops first: a drop is queued after its chunk was marked dirty (the compactor's too).
        while (_moveDrops.TryDequeue(out ulong moved)) TakeDrop(moved, frees);
        foreach (Volume v in _volumes.Values.Concat(_deletedVolumes))
        {
            if (!v.UsesChunks) continue;
            // Drops first: a drop is queued after its chunk was marked dirty, so the record that
            // stops referencing the place is in this batch too.
            Interlocked.Exchange(ref v.PendingFreeSectors, 0);
            TakeDrops(v, frees);
            int perGroup = ChunksPerGroup;
            while (v.DirtyGroups.TryDequeue(out long index))
            {
                if (v.Chunks[index] is not { } group) continue; // past the end of a volume shrunk since
                Volatile.Write(ref group.Queued, 0);
                for (int w = 0; w < group.Dirty.Length; w++)
                {
                    ulong bits = Interlocked.Exchange(ref group.Dirty[w], 0);
                    while (bits != 0)
                    {
                        int bit = System.Numerics.BitOperations.TrailingZeroCount(bits);
                        bits &= bits - 1;
                        int i = w * 64 + bit;
                        long chunk = index * perGroup + i;
                        chunks.Add((v, chunk));
                        if (v.Deleted) continue;
                        MetadataKeys.WriteChunkKey(key, v.Id, chunk);
                        var (location, crc) = group.Read(i);
                        if (location.IsMapped)
                        {
                            ChunkRecord.Encode(location, crc, value);
                            batch.Put(key, value);
                            bytes += key.Length + value.Length;
                        }
                        else
                        {
                            batch.Delete(key);
                            bytes += key.Length;
                        }
                    }
                }
                NoteIfEmpty(v, index, group);
            }
            if (v.Deleted)
            {
                batch.DeleteRange(MetadataKeys.ChunkKey(v.Id, 0), (ulong)17, MetadataKeys.ChunkKey(v.Id + 1, 0), (ulong)17);
                bytes += 34;
            }
        }
        foreach (var (drive, extent) in _dirtyContainers)
        {
            byte[] containerKey = MetadataKeys.ContainerKey(drive, extent);
            if (DriveAt(drive).Containers[extent] is not null) batch.Put(containerKey, Array.Empty<byte>());
            else batch.Delete(containerKey);
            bytes += containerKey.Length;
        }
        var capture = new ChunkCapture(chunks, frees, [.. _dirtyContainers]);
        _dirtyContainers.Clear();
        return capture;
    }

    private void ChunkCommitDone(ChunkCapture c)
    {
        _chunkFreesDurable.AddRange(c.Frees);
        c.Frees.Clear();
        ReclaimChunks();
        MaybeCompact();
        MaybeFreeEmptyGroups();
    }

    private void RestoreChunks(ChunkCapture c)
    {
        foreach (var (v, chunk) in c.Chunks)
        {
            int perGroup = ChunksPerGroup;
            long index = chunk / perGroup;
            if (v.Chunks[index] is { } group && group.MarkDirty((int)(chunk % perGroup))) v.DirtyGroups.Enqueue(index);
        }
        _chunkFreesNext.AddRange(c.Frees);
        c.Frees.Clear();
        _dirtyContainers.UnionWith(c.Containers);
    }

    private bool ChunksDirty() =>
        _dirtyContainers.Count > 0 || _chunkFreesNext.Count > 0 || _chunkFreesDurable.Count > 0 || !_moveDrops.IsEmpty
        || _volumes.Values.Concat(_deletedVolumes).Any(v => v.UsesChunks && (!v.DirtyGroups.IsEmpty || !v.Drops.IsEmpty));

    // ---- volumes: snapshot, clone, delete, load --------------------------------------------

    /// <summary>The group of a chunk group index of v, created on first use. Under the metadata lock.</summary>
    internal ChunkGroup GroupFor(Volume v, long index)
    {
        lock (MetaLock)
        {
            if (v.Chunks[index] is { } group) return group;
            v.Chunks.Set(index, group = new ChunkGroup(ChunksPerGroup));
            return group;
        }
    }

    /// <summary>Gives target every chunk of source (one more reference each). Under the metadata lock.</summary>
    private void CopyChunks(Volume source, Volume target)
    {
        foreach (var (index, group) in source.Chunks.Entries())
        {
            ChunkGroup? copy = null; // none for a group whose chunks were all discarded
            for (int i = 0; i < group.Count; i++)
            {
                var (location, crc) = group.Read(i);
                if (!location.IsMapped) continue;
                if (copy is null) target.Chunks.Set(index, copy = new ChunkGroup(group.Count));
                copy.Write(i, location, crc);
                if (copy.MarkDirty(i)) target.DirtyGroups.Enqueue(index);
                AddChunkRef(location);
                target.MappedChunks++;
                target.StoredSectors += location.Sectors;
            }
        }
    }

    /// <summary>Drops every chunk of a volume being deleted. Under the metadata lock.</summary>
    private void DropAllChunks(Volume v)
    {
        foreach (var (_, group) in v.Chunks.Entries())
        {
            for (int i = 0; i < group.Count; i++)
            {
                var (location, _) = group.Read(i);
                if (location.IsMapped) v.Drops.Enqueue(location.Packed);
            }
        }
        v.ChargedGroup?.TryCharge(-Interlocked.Read(ref v.StoredSectors) * ChunkLayout.SectorSize, ExtentSize);
        if (v.Region is { } region)
        {
            MarkSectors(region.Container, Math.Min(region.Next, region.End), Math.Max(0, region.End - region.Next), used: false);
            Interlocked.Exchange(ref region.Next, region.End);
            CloseRegion(region);
            v.Region = null;
        }
    }

    /// <summary>Loads containers and chunk maps and rebuilds used sectors and refcounts from them.</summary>
    private void LoadChunks(Iterator it, Dictionary<long, Volume> byId)
    {
        for (it.Seek([MetadataKeys.Container]); it.Valid() && it.GetKeySpan()[0] == MetadataKeys.Container; it.Next())
        {
            var (driveIndex, extent) = MetadataKeys.ParseContainerKey(it.GetKeySpan());
            PoolDrive? drive = driveIndex >= 0 && driveIndex < _drives.Count ? DriveAt(driveIndex) : null;
            if (drive is null || extent < 0 || extent >= drive.ExtentCount)
            {
                throw new VolumeException(VolumeError.Io, $"pool {Name}: chunk container drive {driveIndex} extent {extent} is outside the pool (run `edgeblock pool check {Name}`)");
            }
            drive.Containers[extent] = new ChunkContainer(drive, extent, SectorsPerExtent);
            _containers++;
            drive.Refs[extent] = 1;
        }
        int perGroup = ChunksPerGroup;
        var references = new Dictionary<ulong, int>();
        for (it.Seek([MetadataKeys.Chunk]); it.Valid() && it.GetKeySpan()[0] == MetadataKeys.Chunk; it.Next())
        {
            var (volumeId, chunk) = MetadataKeys.ParseChunkKey(it.GetKeySpan());
            var (location, crc) = ChunkRecord.Decode(it.GetValueSpan());
            if (!byId.TryGetValue(volumeId, out Volume? v) || !v.UsesChunks || chunk < 0 || chunk / perGroup >= v.Chunks.Length)
            {
                throw new VolumeException(VolumeError.Io, $"pool {Name}: chunk record for volume {volumeId} chunk {chunk} has no volume (run `edgeblock pool check {Name}`)");
            }
            ChunkContainer? c = location.Drive < _drives.Count && location.Sector / SectorsPerExtent < DriveAt(location.Drive).ExtentCount
                ? DriveAt(location.Drive).Containers[location.Sector / SectorsPerExtent] : null;
            if (c is null || location.Sector - c.FirstSector + location.Sectors > c.Sectors)
            {
                throw new VolumeException(VolumeError.Io, $"pool {Name}: volume {v.Name} chunk {chunk} is stored at {location}, outside every chunk container (run `edgeblock pool check {Name}`)");
            }
            if (v.Chunks[chunk / perGroup] is not { } group) v.Chunks.Set(chunk / perGroup, group = new ChunkGroup(perGroup));
            group.Write((int)(chunk % perGroup), location, crc);
            v.MappedChunks++;
            v.StoredSectors += location.Sectors;
            int seen = references.GetValueOrDefault(location.Place);
            references[location.Place] = seen + 1;
            if (seen == 0) MarkSectors(c, (int)(location.Sector - c.FirstSector), location.Sectors, used: true);
        }
        foreach (var (place, count) in references)
        {
            if (count > 1) _chunkExtraRefs[place] = count - 1;
        }
    }

    /// <summary>After load: empty containers go back to the pool, the others are listed for reuse.</summary>
    private void SettleContainers()
    {
        foreach (PoolDrive drive in _drives)
        {
            foreach (ChunkContainer? c in drive.Containers)
            {
                if (c is not null) AfterSectorsFreed(c);
            }
        }
    }

}
