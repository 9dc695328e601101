using System.Collections.Concurrent;
using EdgeBlock.Storage;

namespace EdgeBlock.Volumes;

/// <summary>
/// In-memory state of one volume or snapshot: its record, its extent map and the queue of
/// map entries changed since the last commit. The map array is read without locks by the I/O
/// path; entries are installed and removed under the pool's metadata lock.
/// </summary>
internal sealed class Volume
{
    private ExtentMapEntry?[] _map;

    public Volume(VolumeRecord record, int extentSize)
    {
        Record = record;
        _map = new ExtentMapEntry?[ExtentsFor(record.SizeBytes, extentSize)];
    }

    public VolumeRecord Record { get; set; }
    public long Id => Record.Id;
    public string Name => Record.Name;
    public bool IsSnapshot => Record.IsSnapshot;

    public ExtentMapEntry?[] Map => Volatile.Read(ref _map);

    /// <summary>Extents mapped (allocated) by this volume, shared ones included.</summary>
    public long Allocated;

    /// <summary>Extent indexes whose map record must be written at the next commit.</summary>
    public readonly ConcurrentQueue<long> DirtyExtents = new();

    /// <summary>Serialises copy-on-write of this volume's shared extents (a slow path).</summary>
    public readonly SemaphoreSlim CowGate = new(1, 1);

    /// <summary>Scratch buffer for copy-on-write, one extent, used under <see cref="CowGate"/>.</summary>
    public AlignedBuffer? CowBuffer;

    public long LastSpaceWarning = -100_000;
    public int OpenCount;
    public bool Deleted;

    public static long ExtentsFor(long sizeBytes, int extentSize) => sizeBytes / extentSize + (sizeBytes % extentSize != 0 ? 1 : 0); // no overflow near long.MaxValue

    /// <summary>Grows the map for a larger size (under the metadata lock).</summary>
    public void Resize(long sizeBytes, int extentSize)
    {
        var map = new ExtentMapEntry?[ExtentsFor(sizeBytes, extentSize)];
        Array.Copy(_map, map, Math.Min(_map.Length, map.Length));
        Volatile.Write(ref _map, map);
    }

    /// <summary>Queues an entry for the next commit (once, however often it changes).</summary>
    public void MarkDirty(long extent, ExtentMapEntry? entry)
    {
        if (entry is null || Interlocked.Exchange(ref entry.Dirty, 1) == 0)
        {
            DirtyExtents.Enqueue(extent);
        }
    }
}
