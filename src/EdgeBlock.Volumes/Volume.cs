using System.Collections.Concurrent;
using EdgeBlock.Storage;

namespace EdgeBlock.Volumes;

/// <summary>
/// In-memory state of one volume or snapshot: its record, its extent map and the queue of
/// map entries changed since the last commit. The map (sparse: it costs memory for what is
/// mapped, not for the volume's size) is read without locks by the I/O path; entries are
/// installed and removed under the pool's metadata lock.
/// </summary>
internal sealed class Volume
{
    public Volume(VolumeRecord record, int extentSize)
    {
        Record = record;
        Features = record.EffectiveFeatures;
        // A volume stores extents in place or chunks redirect-on-write, never both.
        long extents = ExtentsFor(record.SizeBytes, extentSize);
        Map = new SparseMap<ExtentMapEntry>(Features.UsesChunks ? 0 : extents);
        Chunks = new SparseMap<ChunkGroup>(Features.UsesChunks ? extents : 0);
        if (Features.UsesChunks)
        {
            Codec = new ChunkCodec(Features.Compression, Features.CompressionLevel);
            Stripes = new SemaphoreSlim[StripeCount];
            for (int i = 0; i < Stripes.Length; i++) Stripes[i] = new SemaphoreSlim(1, 1);
        }
    }

    public VolumeFeatures Features { get; }
    public bool UsesChunks => Features.UsesChunks;

    public VolumeRecord Record { get; set; }
    public long Id => Record.Id;
    public string Name => Record.Name;
    public bool IsSnapshot => Record.IsSnapshot;

    /// <summary>Extent map entries by extent index (extent volumes).</summary>
    public SparseMap<ExtentMapEntry> Map { get; }

    // ---- chunk volumes (data services) -------------------------------------------------

    private const int StripeCount = 64;

    /// <summary>Chunk groups by extent index; a group is created on its first write (under the metadata lock).</summary>
    public SparseMap<ChunkGroup> Chunks { get; }

    public ChunkCodec? Codec { get; }

    /// <summary>Serialise writers of one chunk (a partial write merges with what is there); striped by chunk number.</summary>
    public SemaphoreSlim[] Stripes { get; } = [];

    /// <summary>Chunk groups with chunks changed since the last commit.</summary>
    public readonly ConcurrentQueue<long> DirtyGroups = new();

    /// <summary>Stored chunk places this volume stopped referencing, for the next commit to release.</summary>
    public readonly ConcurrentQueue<ulong> Drops = new();

    /// <summary>Sectors allocated to this volume and not yet all handed out (lock-free bump allocation).</summary>
    public ChunkRegion? Region;

    /// <summary>Chunks mapped and the sectors their stored forms take (shared ones included).</summary>
    public long MappedChunks, StoredSectors;

    public long ChecksumErrors;

    /// <summary>The cipher of an encrypted volume, once its key was loaded and checked (at create or first open).</summary>
    public XtsAes? Cipher;

    /// <summary>Sectors of chunks this volume replaced since the last commit (they are freed by the next one).</summary>
    public long PendingFreeSectors;

    /// <summary>The group charged for this volume's stored chunks (writable volumes in a group only).</summary>
    public GroupState? ChargedGroup;

    /// <summary>Extents mapped (allocated) by this volume, shared ones included.</summary>
    public long Allocated;

    /// <summary>Extent indexes whose map record must be written at the next commit.</summary>
    public readonly ConcurrentQueue<long> DirtyExtents = new();

    /// <summary>Serialises copy-on-write of this volume's shared extents (a slow path).</summary>
    public readonly SemaphoreSlim CowGate = new(1, 1);

    /// <summary>Scratch buffer for copy-on-write, one extent, used under <see cref="CowGate"/>.</summary>
    public AlignedBuffer? CowBuffer;

    /// <summary>The origin the volume still reads unresolved blocks from (image attach), null once its copy is done.</summary>
    public OriginState? Origin;

    public long LastSpaceWarning = -100_000;
    public int OpenCount;
    public bool Deleted;

    public static long ExtentsFor(long sizeBytes, int extentSize) => sizeBytes / extentSize + (sizeBytes % extentSize != 0 ? 1 : 0); // no overflow near long.MaxValue

    /// <summary>Sets the map's length for a new size (under the metadata lock).</summary>
    public void Resize(long sizeBytes, int extentSize)
    {
        long extents = ExtentsFor(sizeBytes, extentSize);
        if (UsesChunks) Chunks.Resize(extents);
        else Map.Resize(extents);
    }

    /// <summary>
    /// Managed memory of the volume's map: its pages and its entries (an extent's entry and
    /// bitmap; a chunk group's slots and dirty bits). Object sizes as the 64-bit runtime lays them out.
    /// </summary>
    public long MapBytes(int extentSize)
    {
        if (!UsesChunks) return Map.Bytes + Map.Count * ExtentMapEntry.BytesFor(extentSize);
        return Chunks.Bytes + Chunks.Count * ChunkGroup.BytesFor(extentSize / ChunkLayout.ChunkSize);
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
