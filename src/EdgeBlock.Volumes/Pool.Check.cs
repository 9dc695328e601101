namespace EdgeBlock.Volumes;

/// <summary>What `pool check` found: problems (empty when consistent) and what it counted.</summary>
public sealed record PoolCheckReport(IReadOnlyList<string> Problems, long Volumes, long MappedExtents, long AllocatedExtents, long FreeExtents)
{
    public bool Consistent => Problems.Count == 0;
}

public sealed partial class Pool
{
    /// <summary>
    /// Checks a pool that is not open anywhere (the daemon stopped): opens its metadata and drives,
    /// checks, and closes without writing anything.
    /// </summary>
    public static async Task<PoolCheckReport> CheckOfflineAsync(string metadataDirectory, PoolOptions? options = null)
    {
        Pool pool = Open(metadataDirectory, new PoolOptions
        {
            OpenDrive = options?.OpenDrive ?? new PoolOptions().OpenDrive,
            Logger = options?.Logger ?? new PoolOptions().Logger,
            CommitInterval = TimeSpan.Zero,
            CompactInterval = TimeSpan.Zero,
            CommitOnFreedSpace = false,
        }, readOnly: true);
        try
        {
            return pool.Check();
        }
        finally
        {
            pool.Abandon();
            foreach (PoolDrive drive in pool._drives) await drive.Device.DisposeAsync();
        }
    }

    /// <summary>
    /// Cross-checks the metadata: every mapping points inside a drive, each physical extent's
    /// refcount equals the number of mappings that use it, free space is exactly the extents
    /// nobody references, and group usage adds up. Run after open, it checks what is on disk.
    /// </summary>
    public PoolCheckReport Check()
    {
        // Not while the compactor moves chunks (a moved chunk is briefly in two places), nor
        // while a commit carries released chunks between the volumes and the free lists.
        while (Interlocked.Exchange(ref _compacting, 1) != 0) Thread.Sleep(1);
        _commitGate.Wait();
        try
        {
            return CheckAtRest();
        }
        finally
        {
            _commitGate.Release();
            Volatile.Write(ref _compacting, 0);
        }
    }

    private PoolCheckReport CheckAtRest()
    {
        var problems = new List<string>();
        lock (MetaLock)
        {
            var counted = _drives.ToDictionary(d => d.Index, d => new int[d.ExtentCount]);
            long mapped = 0;
            foreach (Volume v in _volumes.Values)
            {
                long inMap = 0;
                foreach (var (i, e) in v.Map.Entries())
                {
                    inMap++;
                    if (!counted.TryGetValue(e.Drive, out int[]? refs) || e.Physical < 0 || e.Physical >= refs.Length)
                    {
                        problems.Add($"volume {v.Name} extent {i} points outside the pool (drive {e.Drive}, extent {e.Physical})");
                        continue;
                    }
                    refs[e.Physical]++;
                }
                mapped += inMap;
                if (inMap != v.Allocated) problems.Add($"volume {v.Name}: {inMap} mapped extents, but {v.Allocated} counted");
            }
            foreach (PoolDrive d in _drives)
            {
                for (long x = 0; x < d.ExtentCount; x++)
                {
                    if (d.Containers[x] is not null) counted[d.Index][x]++;
                }
            }
            CheckChunks(problems);
            long allocated = 0, free = 0;
            var freeing = _freeing.Select(f => (f.Drive.Index, f.Extent)).ToHashSet();
            foreach (PoolDrive d in _drives)
            {
                int[] expected = counted[d.Index];
                for (long x = 0; x < d.ExtentCount; x++)
                {
                    if (d.Refs[x] != expected[x])
                    {
                        problems.Add($"drive {d.Index} extent {x}: refcount {d.Refs[x]}, but {expected[x]} mapping(s) use it");
                        if (problems.Count > 100) break;
                    }
                    if (d.Refs[x] > 0) allocated++;
                }
                free += d.FreeCount;
                long referenced = d.Refs.LongCount(r => r > 0);
                if (referenced != d.AllocatedCount) problems.Add($"drive {d.Index}: {referenced} extents referenced, but {d.AllocatedCount} counted");
            }
            long unreferenced = _drives.Sum(d => d.Refs.LongCount(r => r == 0));
            if (free + freeing.Count != unreferenced)
            {
                problems.Add($"free space: {free} free + {freeing.Count} freeing extents, but {unreferenced} are unreferenced");
            }
            if (free != _freeExtents) problems.Add($"free space counter says {_freeExtents} extents, free lists hold {free}");
            foreach (GroupState g in _groups.Values)
            {
                var members = _volumes.Values.Where(v => !v.IsSnapshot && v.Record.Group == g.Record.Name).ToList();
                long used = members.Where(v => !v.UsesChunks).Sum(v => v.Allocated);
                if (used != g.UsedExtents) problems.Add($"group {g.Record.Name}: {used} extents used, but {g.UsedExtents} counted");
                long chunkBytes = members.Where(v => v.UsesChunks).Sum(v => v.StoredSectors * ChunkLayout.SectorSize);
                if (chunkBytes != g.UsedChunkBytes) problems.Add($"group {g.Record.Name}: {chunkBytes} bytes of stored chunks, but {g.UsedChunkBytes} counted");
            }
            return new PoolCheckReport(problems, _volumes.Count, mapped, allocated, free);
        }
    }

    /// <summary>
    /// Chunk volumes (at rest, no I/O in flight): every stored chunk lies in a container on
    /// sectors marked used; refcounts equal the volumes mapping each place; every used sector
    /// belongs to a stored chunk, a chunk waiting to be freed or an open allocation region.
    /// Returns the chunks mapped.
    /// </summary>
    private long CheckChunks(List<string> problems)
    {
        var references = new Dictionary<ulong, int>();
        var expected = new Dictionary<ChunkContainer, HashSet<int>>();
        void Expect(ChunkLocation place, string what)
        {
            PoolDrive? drive = place.Drive < _drives.Count ? DriveAt(place.Drive) : null;
            ChunkContainer? c = drive is not null && place.Sector / SectorsPerExtent < drive.ExtentCount ? drive.Containers[place.Sector / SectorsPerExtent] : null;
            if (c is null || place.Sector - c.FirstSector + place.Sectors > c.Sectors)
            {
                problems.Add($"{what} is stored at {place}, outside every chunk container");
                return;
            }
            if (!expected.TryGetValue(c, out HashSet<int>? sectors)) expected[c] = sectors = [];
            for (int s = 0; s < place.Sectors; s++) sectors.Add((int)(place.Sector - c.FirstSector) + s);
        }
        int perGroup = ChunksPerGroup;
        long mapped = 0;
        foreach (Volume v in _volumes.Values.Concat(_deletedVolumes).Where(v => v.UsesChunks))
        {
            long chunks = 0, sectors = 0;
            foreach (var (index, group) in v.Deleted ? [] : v.Chunks.Entries())
            {
                for (int i = 0; i < group.Count; i++)
                {
                    var (place, _) = group.Read(i);
                    if (!place.IsMapped) continue;
                    chunks++;
                    sectors += place.Sectors;
                    references[place.Place] = references.GetValueOrDefault(place.Place) + 1;
                    Expect(place, $"volume {v.Name} chunk {index * perGroup + i}");
                }
            }
            // Places dropped but not yet processed by a commit still hold their reference.
            foreach (ulong packed in v.Drops)
            {
                var place = new ChunkLocation(packed);
                references[place.Place] = references.GetValueOrDefault(place.Place) + 1;
                Expect(place, $"a chunk volume {v.Name} dropped");
            }
            if (v.Deleted) continue;
            mapped += chunks;
            if (chunks != v.MappedChunks || sectors != v.StoredSectors)
            {
                problems.Add($"volume {v.Name}: {chunks} chunks in {sectors} sectors mapped, but {v.MappedChunks} in {v.StoredSectors} counted");
            }
            if (v.Region is { } region)
            {
                for (int s = Math.Min(region.Next, region.End); s < region.End; s++) Expect(ChunkLocation.Create(region.Container.Drive.Index, region.Container.FirstSector + s, ChunkLayout.SectorSize, ChunkCodecKind.Raw), $"volume {v.Name}'s allocation region");
            }
        }
        foreach (ulong packed in _moveDrops)
        {
            var place = new ChunkLocation(packed);
            references[place.Place] = references.GetValueOrDefault(place.Place) + 1;
            Expect(place, "a chunk the compactor moved");
        }
        foreach (var (place, count) in references)
        {
            int extra = _chunkExtraRefs.GetValueOrDefault(place);
            if (extra != count - 1) problems.Add($"chunk place {new ChunkLocation(place | (1UL << 63))}: {count} references, but refcount says {extra + 1}");
        }
        foreach (ulong packed in _chunkFreesNext.Concat(_chunkFreesDurable)) Expect(new ChunkLocation(packed), "a chunk being freed");
        if (_moveRegion is { } moving)
        {
            for (int s = moving.Next; s < moving.End; s++) Expect(ChunkLocation.Create(moving.Container.Drive.Index, moving.Container.FirstSector + s, ChunkLayout.SectorSize, ChunkCodecKind.Raw), "the compactor's allocation region");
        }
        foreach (PoolDrive d in _drives)
        {
            foreach (ChunkContainer? c in d.Containers)
            {
                if (c is null) continue;
                if (c.UsedCount != c.CountUsed()) problems.Add($"container drive {d.Index} extent {c.Extent}: {c.CountUsed()} sectors marked used, but {c.UsedCount} counted");
                HashSet<int> want = expected.GetValueOrDefault(c) ?? [];
                for (int s = 0; s < c.Sectors; s++)
                {
                    if (c.IsUsed(s) == want.Contains(s)) continue;
                    problems.Add($"container drive {d.Index} extent {c.Extent} sector {s}: {(c.IsUsed(s) ? "used by nothing (leaked)" : "holds data but is marked free")}");
                    if (problems.Count > 100) return mapped;
                }
            }
        }
        return mapped;
    }
}
