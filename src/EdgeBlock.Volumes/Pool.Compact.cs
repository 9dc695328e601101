using EdgeBlock.Storage;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Volumes;

/// <summary>
/// Compaction of chunk containers. Redirect-on-write leaves holes where overwritten chunks
/// were; new chunks fill them, but the containers hold live and dead chunks interleaved, so
/// without help a volume overwritten many times keeps more extents than its data needs. The
/// compactor moves the live chunks of the sparsest containers (stored bytes copied as they
/// are: same length, codec and checksum) into other free space and swaps every map slot that
/// references them, so the emptied containers go back to the pool at the next commits.
/// </summary>
public sealed partial class Pool
{
    private ChunkRegion? _moveRegion;
    private int _compacting;
    private long _lastCompaction;

    /// <summary>Containers less full than this may be emptied by the compactor (moving 9 sectors frees 1 at worst).</summary>
    private const double CompactBelow = 0.9;

    /// <summary>Starts a compaction in the background when the holes in containers are worth it (after a commit).</summary>
    private void MaybeCompact()
    {
        if (_options.CompactInterval <= TimeSpan.Zero || Environment.TickCount64 - _lastCompaction < (long)_options.CompactInterval.TotalMilliseconds) return;
        long holes = _containers * SectorsPerExtent - _containerUsedSectors;
        // Worth it when holes add up to two extents and a tenth of what is stored.
        if (holes < 2L * SectorsPerExtent || holes * 10 < _containerUsedSectors || Volatile.Read(ref _compacting) != 0) return;
        _lastCompaction = Environment.TickCount64;
        _ = Task.Run(async () =>
        {
            try
            {
                await CompactAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                _logger.LogError(e, "pool {Pool}: compaction failed", Name);
            }
        });
    }

    /// <summary>Moves the live chunks out of the sparsest containers; returns the chunks moved, -1 when a compaction is already running.</summary>
    internal async Task<int> CompactAsync(int maxContainers = 64)
    {
        if (Interlocked.Exchange(ref _compacting, 1) != 0) return -1;
        var victims = new HashSet<ChunkContainer>();
        try
        {
            var places = new Dictionary<ulong, List<(Volume Volume, long Chunk)>>();
            lock (MetaLock)
            {
                if (Volatile.Read(ref _disposed) != 0) return 0;
                // Sparsest first, until what is left in holes is a tenth of what is stored.
                long holes = _containers * SectorsPerExtent - _containerUsedSectors;
                foreach (ChunkContainer c in _drives.SelectMany(d => d.Containers).OfType<ChunkContainer>()
                    .Where(c => c.Regions == 0 && c.UsedCount < c.Sectors * CompactBelow).OrderBy(c => c.UsedCount).Take(maxContainers))
                {
                    if (holes * 10 <= _containerUsedSectors) break;
                    c.Draining = true;
                    victims.Add(c);
                    holes -= c.Sectors - c.UsedCount;
                }
                if (victims.Count == 0) return 0;
                // Every slot of every volume and snapshot that points into a victim.
                int perGroup = ChunksPerGroup;
                foreach (Volume v in _volumes.Values.Where(v => v.UsesChunks))
                {
                    foreach (var (index, group) in v.Chunks.Entries())
                    {
                        for (int i = 0; i < group.Count; i++)
                        {
                            var (location, _) = group.Read(i);
                            if (!location.IsMapped || !victims.Contains(ContainerOf(location))) continue;
                            if (!places.TryGetValue(location.Packed, out var slots)) places[location.Packed] = slots = [];
                            slots.Add((v, index * perGroup + i));
                        }
                    }
                }
            }
            int moved = 0;
            foreach (var (packed, slots) in places)
            {
                if (Volatile.Read(ref _disposed) != 0) break;
                if (await MoveAsync(new ChunkLocation(packed), slots).ConfigureAwait(false)) moved++;
            }
            if (moved > 0) _logger.LogInformation("pool {Pool}: compaction moved {Chunks} chunk(s) out of {Containers} sparse container(s)", Name, moved, victims.Count);
            return moved;
        }
        finally
        {
            lock (MetaLock)
            {
                foreach (ChunkContainer c in victims)
                {
                    c.Draining = false;
                    AfterSectorsFreed(c);
                }
                if (_moveRegion is { } region)
                {
                    MarkSectors(region.Container, region.Next, region.End - region.Next, used: false);
                    _moveRegion = null;
                    CloseRegion(region);
                }
            }
            Volatile.Write(ref _compacting, 0);
        }
    }

    /// <summary>Copies one stored chunk to a new place and points the slots that still reference it there.</summary>
    private async Task<bool> MoveAsync(ChunkLocation old, List<(Volume Volume, long Chunk)> slots)
    {
        ChunkLocation place;
        lock (MetaLock)
        {
            if (!TryTakeMoveSectors(old.Sectors, out int drive, out long sector)) return false;
            place = ChunkLocation.Create(drive, sector, old.Length, old.Codec);
            // Every slot's reference to the new place is counted before any is switched, so an
            // overwrite of a switched slot can never release it while others still point at it.
            for (int k = 1; k < slots.Count; k++) AddChunkRef(place);
        }
        AlignedBuffer buffer = ChunkBuffers.Rent();
        int switched = 0, settled = 0;
        try
        {
            Memory<byte> bytes = buffer.Memory[..(old.Sectors * ChunkLayout.SectorSize)];
            ChunkContainer from = ContainerOf(old);
            Interlocked.Increment(ref from.InFlight);
            BlockStatus status;
            try
            {
                status = await DriveAt(old.Drive).Device.ReadAsync(ChunkLba(old), bytes).ConfigureAwait(false);
            }
            finally
            {
                Interlocked.Decrement(ref from.InFlight);
            }
            if (status == BlockStatus.Success) status = await DriveAt(place.Drive).Device.WriteAsync(ChunkLba(place), bytes, fua: false).ConfigureAwait(false);
            int perGroup = ChunksPerGroup;
            foreach (var (v, chunk) in slots)
            {
                settled++;
                SemaphoreSlim stripe = v.Stripes[chunk & (v.Stripes.Length - 1)];
                await stripe.WaitAsync().ConfigureAwait(false);
                try
                {
                    lock (MetaLock)
                    {
                        // The metadata lock keeps a delete or snapshot from reading the slot half-way.
                        ChunkGroup? group = v.Chunks[chunk / perGroup];
                        int i = (int)(chunk % perGroup);
                        if (status != BlockStatus.Success || v.Deleted || group is null || group.Read(i).Location != old)
                        {
                            _moveDrops.Enqueue(place.Packed); // this slot's share of the new place
                            continue;
                        }
                        group.Write(i, place, group.Read(i).Crc);
                        if (group.MarkDirty(i)) v.DirtyGroups.Enqueue(chunk / perGroup);
                        _moveDrops.Enqueue(old.Packed);
                        switched++;
                    }
                }
                finally
                {
                    stripe.Release();
                }
            }
            return switched > 0;
        }
        finally
        {
            // Slots never reached (an exception) give back their share of the new place.
            for (int k = settled; k < slots.Count; k++) _moveDrops.Enqueue(place.Packed);
            ChunkBuffers.Return(buffer);
        }
    }

    /// <summary>Sectors for a moved chunk outside the containers being emptied. Under the metadata lock.</summary>
    private bool TryTakeMoveSectors(int sectors, out int drive, out long sector)
    {
        drive = 0;
        sector = 0;
        if (_moveRegion is { } region && region.Next + sectors > region.End)
        {
            MarkSectors(region.Container, region.Next, region.End - region.Next, used: false);
            region.Next = region.End;
            _moveRegion = null;
            CloseRegion(region);
        }
        _moveRegion ??= OpenRegion(null, sectors);
        if (_moveRegion is null) return false;
        drive = _moveRegion.Container.Drive.Index;
        sector = _moveRegion.Container.FirstSector + _moveRegion.Next;
        _moveRegion.Next += sectors;
        return true;
    }
}
