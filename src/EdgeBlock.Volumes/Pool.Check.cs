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
        var problems = new List<string>();
        lock (MetaLock)
        {
            var counted = _drives.ToDictionary(d => d.Index, d => new int[d.ExtentCount]);
            long mapped = 0;
            foreach (Volume v in _volumes.Values)
            {
                ExtentMapEntry?[] map = v.Map;
                long inMap = 0;
                for (long i = 0; i < map.Length; i++)
                {
                    if (map[i] is not { } e) continue;
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
                long used = _volumes.Values.Where(v => !v.IsSnapshot && v.Record.Group == g.Record.Name).Sum(v => v.Allocated);
                if (used != g.UsedExtents) problems.Add($"group {g.Record.Name}: {used} extents used, but {g.UsedExtents} counted");
            }
            return new PoolCheckReport(problems, _volumes.Count, mapped, allocated, free);
        }
    }
}
