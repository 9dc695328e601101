using EdgeBlock.Storage;

namespace EdgeBlock.Volumes;

/// <summary>
/// One member drive of a pool: its device, its label and, in memory, the reference count of
/// each of its extents (0 = free) with a stack of free extents to allocate from.
/// Refcounts change under the pool's metadata lock; the I/O path only reads them.
/// </summary>
internal sealed class PoolDrive
{
    private readonly Stack<long> _free = new();

    public PoolDrive(DriveRecord record, IBlockDevice device, int extentSize)
    {
        Record = record;
        Device = device;
        ExtentSize = extentSize;
        Refs = new int[record.ExtentCount];
        Containers = new ChunkContainer?[record.ExtentCount];
    }

    public DriveRecord Record { get; }
    public int Index => Record.Index;
    public IBlockDevice Device { get; }
    public int ExtentSize { get; }
    public long ExtentCount => Record.ExtentCount;

    /// <summary>Reference count of each physical extent.</summary>
    public int[] Refs { get; }

    /// <summary>Extents that hold stored chunks, by extent number (null for the others); read by the I/O path without a lock.</summary>
    public ChunkContainer?[] Containers { get; }

    public long FreeCount => _free.Count;

    /// <summary>Extents with a reference (kept as refcounts move between 0 and 1, so Info need not scan).</summary>
    public long AllocatedCount;

    /// <summary>The drive LBA (in device blocks) of a byte offset inside a physical extent.</summary>
    public long Lba(long physical, long offsetInExtent) =>
        (PoolLayout.DataOffset + physical * ExtentSize + offsetInExtent) / Device.BlockSize;

    /// <summary>Fills the free stack from the refcounts, lowest extents on top.</summary>
    public void RebuildFreeList(ISet<long> excluded)
    {
        _free.Clear();
        for (long e = ExtentCount - 1; e >= 0; e--)
        {
            if (Refs[e] == 0 && !excluded.Contains(e)) _free.Push(e);
        }
    }

    public long TakeFree() => _free.Pop();

    public void ReturnFree(long extent) => _free.Push(extent);
}
