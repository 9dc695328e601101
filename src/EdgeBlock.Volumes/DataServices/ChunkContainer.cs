using System.Numerics;

namespace EdgeBlock.Volumes;

/// <summary>
/// A pool extent that holds stored chunks, split into 4 KiB sectors with a used bitmap.
/// Sectors are used by a stored chunk, by a volume's allocation region, or freed after the
/// commit that dropped their last reference (and once no read uses them). The extent goes back
/// to the pool when no sector is used. Bitmap and counts change under the pool's metadata lock.
/// </summary>
internal sealed class ChunkContainer(PoolDrive drive, long extent, int sectors)
{
    private readonly ulong[] _used = new ulong[(sectors + 63) / 64];

    public PoolDrive Drive { get; } = drive;
    public long Extent { get; } = extent;
    public int Sectors { get; } = sectors;

    /// <summary>Drive sector (counted from the data area) of this container's first sector.</summary>
    public long FirstSector => Extent * Sectors;

    public int UsedCount { get; private set; }

    /// <summary>Reads of chunks stored here in progress: freed sectors are not reused until 0.</summary>
    public int InFlight;

    /// <summary>Allocation regions of volumes open in this container.</summary>
    public int Regions;

    /// <summary>True while in the pool's list of containers with free sectors.</summary>
    public bool Listed;

    /// <summary>The compactor is moving its chunks out: nothing new is allocated here.</summary>
    public bool Draining;

    public bool IsUsed(int sector) => (_used[sector >> 6] & (1UL << (sector & 63))) != 0;

    /// <summary>Marks sectors used or free; returns how many changed.</summary>
    public int Mark(int first, int count, bool used)
    {
        int changed = 0;
        for (int s = first; s < first + count; s++)
        {
            if (IsUsed(s) == used) continue;
            _used[s >> 6] ^= 1UL << (s & 63);
            changed++;
        }
        UsedCount += used ? changed : -changed;
        return changed;
    }

    /// <summary>The first run of at least need free sectors: its start and length; (-1, 0) if none.</summary>
    public (int Start, int Length) FindRun(int need)
    {
        int s = 0;
        while (s < Sectors)
        {
            if (IsUsed(s)) { s++; continue; }
            int start = s;
            while (s < Sectors && !IsUsed(s)) s++;
            if (s - start >= need) return (start, s - start);
        }
        return (-1, 0);
    }

    public int CountUsed()
    {
        int n = 0;
        foreach (ulong w in _used) n += BitOperations.PopCount(w);
        return n;
    }
}

/// <summary>A run of sectors a volume allocates from without a lock (Interlocked bump of Next).</summary>
internal sealed class ChunkRegion(ChunkContainer container, int start, int end)
{
    public ChunkContainer Container { get; } = container;
    public int End { get; } = end;
    public int Next = start;
}
