using EdgeBlock.Storage;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Volumes;

/// <summary>Volume, snapshot, clone and group operations. Each ends with a commit: when it returns, it is durable.</summary>
public sealed partial class Pool
{
    public Task<VolumeInfo> CreateVolumeAsync(string name, long sizeBytes, long reserveBytes = 0, string? group = null, VolumeFeatures? features = null,
        VolumeKeySource? key = null) => CreateVolumeCoreAsync(name, sizeBytes, reserveBytes, group, features ?? VolumeFeatures.None, key, null);

    /// <summary>Creates a volume, attached to an origin when one is given (see <see cref="AttachVolumeAsync"/>), in one commit.</summary>
    private async Task<VolumeInfo> CreateVolumeCoreAsync(string name, long sizeBytes, long reserveBytes, string? group, VolumeFeatures features,
        VolumeKeySource? key, (VolumeOriginRecord Record, IVolumeOrigin Source)? origin)
    {
        PoolNames.Check("volume", name);
        CheckSize(name, sizeBytes, ExtentSize);
        if (group is not null) PoolNames.Check("group", group);
        if (reserveBytes < 0 || reserveBytes > sizeBytes)
        {
            throw new VolumeException(VolumeError.Invalid, $"volume {Name}/{name}: reservation {reserveBytes} bytes must be between 0 and the size ({sizeBytes} bytes)");
        }
        (XtsAes? cipher, VolumeEncryption? encryption) = NewVolumeKey($"{Name}/{name}", features, key);
        lock (MetaLock)
        {
            if (_volumes.ContainsKey(name))
            {
                cipher?.Dispose();
                throw new VolumeException(VolumeError.AlreadyExists, $"volume {Name}/{name} already exists");
            }
            try
            {
                CheckReservation(name, ExtentsOf(reserveBytes));
            }
            catch
            {
                cipher?.Dispose();
                throw;
            }
            if (group is not null) GroupNamed(group);
            var v = new Volume(new VolumeRecord(NextVolumeId(), name, Guid.NewGuid(), sizeBytes, reserveBytes, group, false, null, DateTimeOffset.UtcNow,
                features.UsesChunks ? features : null, encryption), ExtentSize) { Cipher = cipher };
            _volumes[name] = v;
            if (origin is { } attached) v.Origin = new OriginState(v.Id, attached.Record) { Source = attached.Source, RecordDirty = true };
            if (v.UsesChunks) v.ChargedGroup = group is null ? null : GroupNamed(group);
            else _unusedReserve += UnusedReserveOf(v);
            _dirtyVolumeRecords.Add(v.Id);
        }
        await CommitOrThrowAsync($"create volume {name}");
        _logger.LogInformation("pool {Pool}: volume {Volume} created, {Size} bytes, reserve {Reserve}, group {Group}", Name, name, sizeBytes, reserveBytes, group ?? "-");
        return GetVolume(name);
    }

    /// <summary>The group of that name, created (without a quota, saved at the next commit) if new. Under the metadata lock.</summary>
    private GroupState GroupNamed(string group)
    {
        if (!_groups.TryGetValue(group, out GroupState? g))
        {
            _groups[group] = g = new GroupState(new GroupRecord(group, null));
            _dirtyGroups.Add(group);
        }
        return g;
    }

    private static void CheckSize(string name, long sizeBytes, int extentSize)
    {
        if (sizeBytes < PoolLayout.BlockSize || sizeBytes % PoolLayout.BlockSize != 0)
        {
            throw new VolumeException(VolumeError.Invalid, $"volume {name}: size {sizeBytes} bytes must be a positive multiple of {PoolLayout.BlockSize}");
        }
        // The map has a slot per extent of the volume's size, up to what its pages can index.
        if (Volume.ExtentsFor(sizeBytes, extentSize) > SparseMap<ExtentMapEntry>.MaxLength)
        {
            throw new VolumeException(VolumeError.Invalid,
                $"volume {name}: size {sizeBytes} bytes is more than the largest volume of this pool ({LargestVolume(extentSize)} bytes with {extentSize}-byte extents)");
        }
    }

    /// <summary>The largest volume size a map can index with that extent size (a multiple of the block size).</summary>
    internal static long LargestVolume(int extentSize) =>
        SparseMap<ExtentMapEntry>.MaxLength > long.MaxValue / extentSize ? long.MaxValue / PoolLayout.BlockSize * PoolLayout.BlockSize : SparseMap<ExtentMapEntry>.MaxLength * extentSize;

    private void CheckReservation(string name, long extents)
    {
        long available = _freeExtents - UnusedReserveTotal();
        if (extents > available)
        {
            throw new VolumeException(VolumeError.NoSpace,
                $"volume {Name}/{name}: cannot reserve {extents * ExtentSize} bytes; the pool has {Math.Max(0, available) * (long)ExtentSize} bytes neither allocated nor reserved");
        }
    }

    private long NextVolumeId()
    {
        long id = _record.NextVolumeId;
        _record = _record with { NextVolumeId = id + 1 };
        _poolRecordDirty = true;
        return id;
    }

    /// <summary>Grows a volume; shrinking is refused unless force and nothing is allocated past the new end.</summary>
    public async Task<VolumeInfo> ResizeVolumeAsync(string name, long sizeBytes, bool force = false)
    {
        CheckSize(name, sizeBytes, ExtentSize);
        // Discards past a new end must be durable first: shrinking drops their chunk groups, and with them what a commit would delete.
        await CommitOrThrowAsync($"resize volume {name}");
        lock (MetaLock)
        {
            Volume v = Find(name);
            if (v.IsSnapshot) throw new VolumeException(VolumeError.Invalid, $"{Name}/{name} is a snapshot; snapshots keep their size");
            if (v.OpenCount > 0) throw new VolumeException(VolumeError.Busy, $"volume {Name}/{name} is exported; remove its namespace before resizing");
            if (sizeBytes < v.Record.SizeBytes)
            {
                RefuseAttached(v, "shrink it");
                bool allocatedBeyond = v.UsesChunks ? ChunksMappedFrom(v, sizeBytes) : ExtentsMappedFrom(v, sizeBytes);
                if (!force) throw new VolumeException(VolumeError.Invalid, $"volume {Name}/{name}: shrinking from {v.Record.SizeBytes} to {sizeBytes} bytes loses data; add --force if the end is unused");
                if (allocatedBeyond) throw new VolumeException(VolumeError.Busy, $"volume {Name}/{name}: data is allocated beyond {sizeBytes} bytes; discard it first");
                if (v.UsesChunks && v.Chunks.Entries(Volume.ExtentsFor(sizeBytes, ExtentSize)).Any(g => Volatile.Read(ref g.Value.Queued) != 0))
                {
                    throw new VolumeException(VolumeError.Busy, $"volume {Name}/{name}: changes beyond {sizeBytes} bytes are not committed yet; try again");
                }
                if (v.Record.ReserveBytes > sizeBytes) throw new VolumeException(VolumeError.Invalid, $"volume {Name}/{name}: its reservation ({v.Record.ReserveBytes} bytes) exceeds {sizeBytes} bytes");
            }
            v.Record = v.Record with { SizeBytes = sizeBytes };
            v.Resize(sizeBytes, ExtentSize);
            _dirtyVolumeRecords.Add(v.Id);
        }
        await CommitOrThrowAsync($"resize volume {name}");
        return GetVolume(name);
    }

    private bool ExtentsMappedFrom(Volume v, long sizeBytes)
    {
        long firstGone = Volume.ExtentsFor(sizeBytes, ExtentSize);
        int firstBlock = (int)(sizeBytes % ExtentSize / PoolLayout.BlockSize);
        return v.Map.Entries(firstGone).Any()
            || (firstBlock != 0 && v.Map[firstGone - 1] is { } last && last.CountValid(firstBlock, BlocksPerExtent - firstBlock) > 0);
    }

    /// <summary>Whether a chunk that holds bytes at or past sizeBytes is mapped (a chunk across that end counts whole).</summary>
    private bool ChunksMappedFrom(Volume v, long sizeBytes)
    {
        int perGroup = ChunksPerGroup;
        long first = sizeBytes / ChunkLayout.ChunkSize;
        foreach (var (index, g) in v.Chunks.Entries(first / perGroup))
        {
            for (long chunk = Math.Max(first, index * perGroup); chunk < (index + 1) * perGroup; chunk++)
            {
                if (g.Read((int)(chunk % perGroup)).Location.IsMapped) return true;
            }
        }
        return false;
    }

    /// <summary>Takes a read-only, copy-on-write snapshot NAME@SNAP: no data is copied.</summary>
    public async Task<VolumeInfo> SnapshotAsync(string name, string snapshot)
    {
        PoolNames.Check("snapshot", snapshot);
        string full = $"{name}@{snapshot}";
        List<ExtentMapEntry> shared;
        lock (MetaLock)
        {
            Volume origin = Find(name);
            if (origin.IsSnapshot) throw new VolumeException(VolumeError.Invalid, $"{Name}/{name} is a snapshot; clone it first to snapshot the clone");
            RefuseAttached(origin, "take the snapshot");
            if (_volumes.ContainsKey(full)) throw new VolumeException(VolumeError.AlreadyExists, $"snapshot {Name}/{full} already exists");
            var snap = new Volume(new VolumeRecord(NextVolumeId(), full, Guid.NewGuid(), origin.Record.SizeBytes, 0, origin.Record.Group, true, name, DateTimeOffset.UtcNow, origin.Record.Features, origin.Record.Encryption), ExtentSize);
            shared = origin.UsesChunks ? [] : CopyMappings(origin, snap);
            if (origin.UsesChunks) CopyChunks(origin, snap);
            _volumes[full] = snap;
            _dirtyVolumeRecords.Add(snap.Id);
        }
        // Writes that saw the extents unshared before the copy may still be landing: wait for
        // them, so the snapshot holds exactly what was there (later writes copy on write).
        await WaitIdleAsync(shared);
        await CommitOrThrowAsync($"snapshot {name}");
        _logger.LogInformation("pool {Pool}: snapshot {Snapshot} taken", Name, full);
        return GetVolume(full);
    }

    /// <summary>Creates a writable volume from a snapshot; shares its extents until written.</summary>
    public async Task<VolumeInfo> CloneAsync(string snapshot, string newName, long reserveBytes = 0, string? group = null)
    {
        PoolNames.Check("volume", newName);
        lock (MetaLock)
        {
            Volume source = Find(snapshot);
            if (!source.IsSnapshot) throw new VolumeException(VolumeError.Invalid, $"{Name}/{snapshot} is not a snapshot; clone from NAME@SNAP");
            if (_volumes.ContainsKey(newName)) throw new VolumeException(VolumeError.AlreadyExists, $"volume {Name}/{newName} already exists");
            group ??= source.Record.Group;
            if (reserveBytes < 0 || reserveBytes > source.Record.SizeBytes) throw new VolumeException(VolumeError.Invalid, $"volume {Name}/{newName}: reservation {reserveBytes} bytes must be between 0 and the size");
            var clone = new Volume(new VolumeRecord(NextVolumeId(), newName, Guid.NewGuid(), source.Record.SizeBytes, reserveBytes, group, false, snapshot, DateTimeOffset.UtcNow, source.Record.Features, source.Record.Encryption), ExtentSize);
            long sharedBytes = source.UsesChunks ? source.StoredSectors * ChunkLayout.SectorSize : source.Allocated * ExtentSize;
            if (group is not null && _groups.TryGetValue(group, out GroupState? g) && g.Record.QuotaBytes is long quota
                && g.UsedBytes(ExtentSize) + sharedBytes > quota)
            {
                throw new VolumeException(VolumeError.NoSpace, $"volume {Name}/{newName}: group {group} would exceed its quota of {quota} bytes");
            }
            CheckReservation(newName, Math.Max(0, ExtentsOf(reserveBytes) - ExtentsOf(sharedBytes)));
            _volumes[newName] = clone;
            if (source.UsesChunks)
            {
                CopyChunks(source, clone);
                if (group is not null) (clone.ChargedGroup = GroupNamed(group)).UsedChunkBytes += sharedBytes;
            }
            else
            {
                CopyMappings(source, clone);
                _unusedReserve += UnusedReserveOf(clone);
                if (group is not null) GroupNamed(group).UsedExtents += clone.Allocated;
            }
            _dirtyVolumeRecords.Add(clone.Id);
        }
        await CommitOrThrowAsync($"clone {snapshot}");
        _logger.LogInformation("pool {Pool}: volume {Volume} cloned from {Snapshot}", Name, newName, snapshot);
        return GetVolume(newName);
    }

    /// <summary>Gives target a copy of every mapping of source (one more reference each).</summary>
    private List<ExtentMapEntry> CopyMappings(Volume source, Volume target)
    {
        var shared = new List<ExtentMapEntry>();
        foreach (var (i, entry) in source.Map.Entries())
        {
            ExtentMapEntry copy = entry.CopyForSnapshot(ExtentSize);
            target.Map.Set(i, copy);
            target.Allocated++;
            target.MarkDirty(i, copy);
            AddRef(DriveAt(entry.Drive), entry.Physical);
            shared.Add(entry);
        }
        return shared;
    }

    private static async Task WaitIdleAsync(List<ExtentMapEntry> entries)
    {
        foreach (ExtentMapEntry e in entries)
        {
            while (Volatile.Read(ref e.InFlight) != 0) await Task.Delay(1);
        }
    }

    /// <summary>Deletes a volume or snapshot; space returns when the last reference to each extent goes.</summary>
    public async Task DeleteVolumeAsync(string name)
    {
        lock (MetaLock)
        {
            Volume v = Find(name);
            if (v.OpenCount > 0) throw new VolumeException(VolumeError.Busy, $"volume {Name}/{name} is exported; remove its namespace first");
            DropOriginOfDeleted(v);
            if (v.UsesChunks)
            {
                DropAllChunks(v);
            }
            else
            {
                foreach (var (i, _) in v.Map.Entries()) RemoveMapping(v, i);
                _unusedReserve -= UnusedReserveOf(v);
            }
            v.Deleted = true;
            v.Cipher?.Dispose();
            _volumes.Remove(name);
            _deletedVolumes.Add(v);
            _dirtyVolumeRecords.Add(v.Id);
        }
        await CommitOrThrowAsync($"delete volume {name}");
        _logger.LogInformation("pool {Pool}: volume {Volume} deleted", Name, name);
    }

    /// <summary>Sets (or with null clears) a group's quota over the allocated space of its writable volumes.</summary>
    public async Task<GroupInfo> SetGroupQuotaAsync(string group, long? quotaBytes)
    {
        PoolNames.Check("group", group);
        if (quotaBytes is < 0) throw new VolumeException(VolumeError.Invalid, $"group {group}: quota must not be negative");
        lock (MetaLock)
        {
            GroupState g = GroupNamed(group);
            g.Record = g.Record with { QuotaBytes = quotaBytes };
            _dirtyGroups.Add(group);
        }
        await CommitOrThrowAsync($"set the quota of group {group}");
        return ListGroups().First(g => g.Name == group);
    }

    /// <summary>Opens a writable volume as a block device for export. Dispose it to close the export.</summary>
    public IBlockDevice OpenVolume(string name)
    {
        UnlockIfEncrypted(name);
        OpenOriginIfAttached(name);
        lock (MetaLock)
        {
            Volume v = Find(name);
            if (v.IsSnapshot) throw new VolumeException(VolumeError.Invalid, $"{Name}/{name} is a read-only snapshot; clone it to export it");
            v.OpenCount++;
            return DeviceOf(v);
        }
    }

    /// <summary>Opens a volume or snapshot to read it (checks, tests, image export); writing to a snapshot would break it.</summary>
    public IBlockDevice OpenSnapshotForReading(string name)
    {
        UnlockIfEncrypted(name);
        OpenOriginIfAttached(name);
        lock (MetaLock)
        {
            Volume v = Find(name);
            v.OpenCount++;
            return DeviceOf(v);
        }
    }

    internal void CloseVolume(Volume v)
    {
        lock (MetaLock) v.OpenCount--;
    }

    private Volume Find(string name) =>
        _volumes.TryGetValue(name, out Volume? v) ? v : throw new VolumeException(VolumeError.NotFound, $"volume {Name}/{name} does not exist");

    public VolumeInfo GetVolume(string name)
    {
        lock (MetaLock) return Describe(Find(name));
    }

    public IReadOnlyList<VolumeInfo> ListVolumes()
    {
        lock (MetaLock) return _volumes.Values.OrderBy(v => v.Name, StringComparer.Ordinal).Select(Describe).ToList();
    }

    public IReadOnlyList<GroupInfo> ListGroups()
    {
        lock (MetaLock)
        {
            return _groups.Values.OrderBy(g => g.Record.Name, StringComparer.Ordinal)
                .Select(g => new GroupInfo(g.Record.Name, g.Record.QuotaBytes, g.UsedBytes(ExtentSize),
                    _volumes.Values.Count(v => v.Record.Group == g.Record.Name && !v.IsSnapshot)))
                .ToList();
        }
    }

    private VolumeInfo Describe(Volume v)
    {
        // Extent volumes: what was written (valid blocks) against the extents holding it;
        // chunk volumes: the chunks mapped against the sectors their stored forms take.
        long logical = v.UsesChunks ? Interlocked.Read(ref v.MappedChunks) * ChunkLayout.ChunkSize
            : v.Map.Entries().Sum(e => e.Value.CountValid() * (long)PoolLayout.BlockSize);
        long physical = v.UsesChunks ? Interlocked.Read(ref v.StoredSectors) * ChunkLayout.SectorSize : v.Allocated * ExtentSize;
        return new(Name, v.Name, v.Record.Uuid, v.Record.SizeBytes, physical,
            v.Record.ReserveBytes, v.Record.Group, v.IsSnapshot, v.Record.Origin, v.OpenCount > 0, v.Record.Created,
            v.Record.EffectiveFeatures, logical, physical, Interlocked.Read(ref v.ChecksumErrors), v.MapBytes(ExtentSize), OriginInfo(v));
    }

    public PoolInfo Info()
    {
        lock (MetaLock)
        {
            var drives = _drives.Select(d => new PoolDriveInfo(d.Index, d.Record.Path, d.Record.Id, d.ExtentCount * ExtentSize,
                d.AllocatedCount * ExtentSize, d.FreeCount * ExtentSize)).ToList();
            long size = drives.Sum(d => d.SizeBytes);
            long freeing = _freeing.Count * (long)ExtentSize;
            long allocated = drives.Sum(d => d.AllocatedBytes);
            long reserved = UnusedReserveTotal() * ExtentSize;
            // Logical: what the writable volumes hold (a snapshot's shared data is not written twice);
            // physical: what is stored, shared data once — extents of extent volumes, used sectors of chunk containers.
            long logical = _volumes.Values.Where(v => !v.IsSnapshot).Sum(v => Describe(v).LogicalBytes);
            long physical = allocated - _containers * ExtentSize + _containerUsedSectors * ChunkLayout.SectorSize;
            return new PoolInfo(Name, Id, ExtentSize, size, allocated, reserved, Math.Max(0, _freeExtents * ExtentSize - reserved), freeing,
                _volumes.Count, drives, new PoolCounters(Interlocked.Read(ref _commits), Interlocked.Read(ref _metadataBytes),
                    Interlocked.Read(ref _capacityExceeded), Interlocked.Read(ref _copyOnWrites), Interlocked.Read(ref _checksumErrors)),
                logical, physical);
        }
    }
}
