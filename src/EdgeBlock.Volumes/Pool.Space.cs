namespace EdgeBlock.Volumes;

/// <summary>
/// Space accounting. Physical extents are free, allocated (refcount ≥ 1) or freeing (refcount
/// 0, but not reusable until the commit that frees them is durable and no I/O still uses
/// them — reusing earlier could let a crash or a late read expose another volume's data).
/// A writable volume's reservation holds back free extents from everyone else; a group's
/// quota caps the extents its writable volumes map. All of it under <see cref="MetaLock"/>.
/// </summary>
public sealed partial class Pool
{
    private long _freeExtents;
    private long _unusedReserve;
    private long _capacityExceeded;
    private long _copyOnWrites;
    private readonly List<FreeingExtent> _freeing = [];
    private readonly Dictionary<(int Drive, long Extent), List<ExtentMapEntry>> _retired = [];

    /// <summary>A physical extent whose last reference is gone, with the map entries that used it.</summary>
    private sealed record FreeingExtent(PoolDrive Drive, long Extent, List<ExtentMapEntry> Retired)
    {
        public bool Durable;
    }

    private long ExtentsOf(long bytes) => (bytes + ExtentSize - 1) / ExtentSize;

    /// <summary>
    /// Extents of v's reservation it does not use yet. <see cref="_unusedReserve"/> keeps the
    /// sum for extent volumes; chunk volumes change theirs without the lock, so
    /// <see cref="UnusedChunkReserve"/> adds them up when asked.
    /// </summary>
    private long UnusedReserveOf(Volume v) =>
        v.IsSnapshot ? 0 : Math.Max(0, ExtentsOf(v.Record.ReserveBytes) - (v.UsesChunks ? ChunkExtentsOf(v) : v.Allocated));

    private long UnusedReserveTotal() => _unusedReserve + UnusedChunkReserve();

    private void RecountSpace()
    {
        foreach (PoolDrive d in _drives) d.AllocatedCount = d.Refs.LongCount(r => r > 0);
        _freeExtents = _drives.Sum(d => d.FreeCount);
        _unusedReserve = _volumes.Values.Where(v => !v.UsesChunks).Sum(UnusedReserveOf);
        foreach (GroupState g in _groups.Values)
        {
            g.UsedExtents = 0;
            g.UsedChunkBytes = 0;
        }
        foreach (Volume v in _volumes.Values)
        {
            if (v.IsSnapshot || v.Record.Group is not { } name) continue;
            GroupState g = GroupNamed(name);
            if (!v.UsesChunks)
            {
                g.UsedExtents += v.Allocated;
                continue;
            }
            v.ChargedGroup = g;
            g.UsedChunkBytes += v.StoredSectors * ChunkLayout.SectorSize;
        }
    }

    /// <summary>
    /// Whether volume v may take one more physical extent. A new mapping counts against its
    /// group's quota (chunk volumes are charged per sector instead) and may use its own
    /// reservation; a copy-on-write does neither.
    /// </summary>
    private bool CanAllocate(Volume v, bool newMapping)
    {
        if (newMapping && !v.UsesChunks && v.Record.Group is { } name && _groups.TryGetValue(name, out GroupState? g)
            && g.Record.QuotaBytes is long quota && g.UsedBytes(ExtentSize) + ExtentSize > quota)
        {
            return false;
        }
        long reserveOthers = UnusedReserveTotal() - (newMapping && UnusedReserveOf(v) > 0 ? 1 : 0);
        return _freeExtents - 1 >= reserveOthers;
    }

    /// <summary>Takes a free extent from the drive with the most free space (spreads volumes over drives).</summary>
    private (PoolDrive Drive, long Extent) TakeExtent()
    {
        PoolDrive best = _drives[0];
        foreach (PoolDrive d in _drives)
        {
            if (d.FreeCount > best.FreeCount) best = d;
        }
        _freeExtents--;
        return (best, best.TakeFree());
    }

    private void GiveBackUnused(PoolDrive drive, long extent)
    {
        drive.ReturnFree(extent);
        _freeExtents++;
    }

    /// <summary>Installs a new mapping of volume v (refcount 1) and charges it.</summary>
    private void InstallNew(Volume v, long index, ExtentMapEntry entry, PoolDrive drive)
    {
        _unusedReserve -= UnusedReserveOf(v) > 0 ? 1 : 0;
        v.Allocated++;
        if (!v.IsSnapshot && v.Record.Group is { } name && _groups.TryGetValue(name, out GroupState? g)) g.UsedExtents++;
        AddRef(drive, entry.Physical);
        v.Map.Set(index, entry);
        v.MarkDirty(index, entry);
    }

    /// <summary>Removes volume v's mapping at index, dropping one reference to its physical extent.</summary>
    private void RemoveMapping(Volume v, long index)
    {
        ExtentMapEntry? entry = v.Map[index];
        if (entry is null) return;
        v.Map.Set(index, null);
        ReleaseMapping(v, index, entry);
    }

    /// <summary>
    /// Unmaps an extent left without valid blocks, unless an I/O is inside it: a write that found the entry
    /// before marks its blocks valid only once its data is stored, so unmapping under it would lose that
    /// write. Writers count themselves in InFlight and then look at the map again; here the map changes
    /// first and InFlight is read after a full fence, so one side always sees the other. False: kept.
    /// </summary>
    private bool UnmapIfIdle(Volume v, long index, ExtentMapEntry entry)
    {
        v.Map.Set(index, null);
        Interlocked.MemoryBarrier();
        if (Volatile.Read(ref entry.InFlight) != 0)
        {
            v.Map.Set(index, entry);
            return false;
        }
        ReleaseMapping(v, index, entry);
        return true;
    }

    /// <summary>The bookkeeping of an extent just unmapped at index: dirty map slot, counts, the physical extent's reference.</summary>
    private void ReleaseMapping(Volume v, long index, ExtentMapEntry entry)
    {
        v.MarkDirty(index, null);
        v.Allocated--;
        _unusedReserve += UnusedReserveOf(v) > 0 ? 1 : 0;
        if (!v.IsSnapshot && v.Record.Group is { } name && _groups.TryGetValue(name, out GroupState? g)) g.UsedExtents--;
        DropRef(DriveAt(entry.Drive), entry);
    }

    private void AddRef(PoolDrive drive, long extent)
    {
        if (drive.Refs[extent]++ == 0) drive.AllocatedCount++;
        _dirtyRefs.Add((drive.Index, extent));
    }

    /// <summary>Drops a reference held by entry; the last one sends the extent to freeing.</summary>
    private void DropRef(PoolDrive drive, ExtentMapEntry entry)
    {
        var key = (drive.Index, entry.Physical);
        if (!_retired.TryGetValue(key, out List<ExtentMapEntry>? retired)) _retired[key] = retired = [];
        retired.Add(entry);
        drive.Refs[entry.Physical]--;
        _dirtyRefs.Add(key);
        if (drive.Refs[entry.Physical] == 0)
        {
            drive.AllocatedCount--;
            _retired.Remove(key);
            _freeing.Add(new FreeingExtent(drive, entry.Physical, retired));
        }
    }

    /// <summary>Drives by index (indexes are dense: drives are only ever added); replaced whole on add so the I/O path reads it without a lock.</summary>
    private PoolDrive[] _driveTable = [];

    internal PoolDrive DriveAt(int index) => Volatile.Read(ref _driveTable)[index];

    private void PublishDrives()
    {
        Volatile.Write(ref _driveTable, _drives.OrderBy(d => d.Index).ToArray());
        SizeCommitAfterFree();
    }

    /// <summary>Moves freeing extents whose free is durable and whose last I/O is done back to the free lists.</summary>
    private void ReclaimFreed()
    {
        _freeing.RemoveAll(f =>
        {
            if (!f.Durable || f.Retired.Any(e => Volatile.Read(ref e.InFlight) != 0)) return false;
            GiveBackUnused(f.Drive, f.Extent);
            return true;
        });
        foreach (var (key, list) in _retired.ToList())
        {
            list.RemoveAll(e => Volatile.Read(ref e.InFlight) == 0);
            if (list.Count == 0) _retired.Remove(key);
        }
    }
}
