using System.Runtime.CompilerServices;

namespace EdgeBlock.Volumes;

/// <summary>
/// A volume's map from extent index to what is mapped there (an <see cref="ExtentMapEntry"/>, or a
/// <see cref="ChunkGroup"/> of a chunk volume), costing memory for what is mapped, not for the
/// volume's size: a radix tree of 512-slot pages (4 KiB of pointers, as a CPU's page table) at most
/// <see cref="MaxLevels"/> deep, whose pages exist only where something is mapped. A page is created
/// by the first entry under it and unlinked when its last entry goes, so a 100 TiB volume costs
/// one root page until it is written, and discarding gives the pages back.
/// Readers walk it without locks (volatile reads; a page is linked only once it exists whole).
/// Writers — Set and Resize — must be one at a time (the pool's metadata lock) and never write
/// into an unlinked page, since they always walk from the current root.
/// </summary>
internal sealed class SparseMap<T> where T : class
{
    public const int PageBits = MapPage.Bits;
    public const int PageSlots = 1 << PageBits;
    public const int MaxLevels = 4;

    /// <summary>The most slots a map can index: 2^36 (64 PiB of volume at 1 MiB extents, 4 PiB at 64 KiB).</summary>
    public const long MaxLength = 1L << (PageBits * MaxLevels);

    /// <summary>Bytes of one page on the managed heap: object header, count, 512 references.</summary>
    public const int PageBytes = 16 + 8 + PageSlots * 8;

    private const int Mask = PageSlots - 1;

    /// <summary>Root, depth and length, replaced together so a lock-free reader never mixes two of them.</summary>
    private sealed class Top(MapPage root, int levels, long length)
    {
        public readonly MapPage Root = root;
        public readonly int Levels = levels;
        public readonly long Length = length;
        public int RootShift => (Levels - 1) * PageBits;
    }

    /// <summary>The root of every empty map (length 0: the map of the kind a volume does not use); never written.</summary>
    private static readonly MapPage NoPage = new();

    private Top _top;
    private long _pages;

    public SparseMap(long length)
    {
        CheckLength(length);
        _top = new Top(NewRoot(length), LevelsFor(length), length);
    }

    private MapPage NewRoot(long length)
    {
        if (length == 0) return NoPage;
        Interlocked.Increment(ref _pages);
        return new MapPage();
    }

    /// <summary>Slots the map indexes (extents of the volume).</summary>
    public long Length => Volatile.Read(ref _top).Length;

    /// <summary>Slots holding an entry.</summary>
    public long Count { get; private set; }

    /// <summary>Managed memory the map's pages take (entries not included).</summary>
    public long Bytes => Volatile.Read(ref _pages) * PageBytes;

    private static void CheckLength(long length) =>
        ArgumentOutOfRangeException.ThrowIfGreaterThan((ulong)length, (ulong)MaxLength, nameof(length));

    private static int LevelsFor(long length)
    {
        int levels = 1;
        while (levels < MaxLevels && length > 1L << (PageBits * levels)) levels++;
        return levels;
    }

    /// <summary>The entry at index, or null when nothing is mapped there (or index is past the end). Lock-free.</summary>
    public T? this[long index]
    {
        get
        {
            Top top = Volatile.Read(ref _top);
            if ((ulong)index >= (ulong)top.Length) return null;
            MapPage? page = top.Root;
            for (int shift = top.RootShift; shift > 0; shift -= PageBits)
            {
                page = Unsafe.As<MapPage?>(Volatile.Read(ref page.Slots[(int)((index >> shift) & Mask)]));
                if (page is null) return null;
            }
            return Unsafe.As<T?>(Volatile.Read(ref page.Slots[(int)(index & Mask)]));
        }
    }

    /// <summary>Maps (or with null unmaps) index. One writer at a time.</summary>
    public void Set(long index, T? value)
    {
        Top top = _top;
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((ulong)index, (ulong)top.Length, nameof(index));
        if (value is null)
        {
            Clear(top.Root, top.RootShift, index, isRoot: true);
            return;
        }
        MapPage page = top.Root;
        for (int shift = top.RootShift; shift > 0; shift -= PageBits)
        {
            ref object? slot = ref page.Slots[(int)((index >> shift) & Mask)];
            if (slot is not MapPage child)
            {
                // Whole before it is linked: a reader that finds it sees empty slots, never a torn page.
                child = new MapPage();
                Volatile.Write(ref slot, child);
                page.Used++;
                Interlocked.Increment(ref _pages);
            }
            page = child;
        }
        ref object? leaf = ref page.Slots[(int)(index & Mask)];
        if (leaf is null)
        {
            page.Used++;
            Count++;
        }
        Volatile.Write(ref leaf, value);
    }

    /// <summary>Clears index under page; true when page is left empty (and was unlinked by the caller).</summary>
    private bool Clear(MapPage page, int shift, long index, bool isRoot)
    {
        ref object? slot = ref page.Slots[(int)((index >> shift) & Mask)];
        if (slot is null) return false;
        if (shift > 0 && !Clear(Unsafe.As<MapPage>(slot), shift - PageBits, index, isRoot: false)) return false;
        // A reader still holding an unlinked page finds it empty: its entries went first.
        Volatile.Write(ref slot, null);
        if (shift == 0) Count--;
        else Interlocked.Decrement(ref _pages);
        return --page.Used == 0 && !isRoot;
    }

    /// <summary>
    /// Sets the length: growing adds levels above the root as needed (the old root becomes the first
    /// child); shrinking unmaps every entry past the end. One writer at a time.
    /// </summary>
    public void Resize(long length)
    {
        CheckLength(length);
        Top top = _top;
        foreach (var (index, _) in Entries(length)) Set(index, null);
        MapPage root = top.Length == 0 ? NewRoot(length) : top.Root;
        int levels = top.Levels;
        for (; levels < LevelsFor(length); levels++)
        {
            if (root.Used == 0) continue; // an empty root serves at any depth
            var parent = new MapPage { Used = 1 };
            parent.Slots[0] = root;
            Interlocked.Increment(ref _pages);
            root = parent;
        }
        Volatile.Write(ref _top, new Top(root, levels, length));
    }

    /// <summary>
    /// The first entry at or after index (which it then holds), skipping unmapped pages whole; null
    /// when there is none. Lock-free and allocation-free (a discard walks the map with it).
    /// </summary>
    public T? Next(ref long index)
    {
        Top top = Volatile.Read(ref _top);
        if (index < 0) index = 0;
        return index >= top.Length ? null : Next(top.Root, top.RootShift, 0, ref index, top.Length);
    }

    private static T? Next(MapPage page, int shift, long baseIndex, ref long index, long end)
    {
        for (int s = (int)((index - baseIndex) >> shift); s < PageSlots; s++)
        {
            long start = baseIndex + ((long)s << shift);
            if (start >= end) return null;
            object? slot = Volatile.Read(ref page.Slots[s]);
            if (slot is null) continue;
            if (shift == 0)
            {
                index = start;
                return Unsafe.As<T>(slot);
            }
            if (start < index) start = index; // the first child page is entered part-way, the others from their start
            if (Next(Unsafe.As<MapPage>(slot), shift - PageBits, baseIndex + ((long)s << shift), ref start, end) is { } found)
            {
                index = start;
                return found;
            }
        }
        return null;
    }

    /// <summary>
    /// The entries from index first on, in index order. Entries set or cleared meanwhile may or
    /// may not be seen; the others are seen once.
    /// </summary>
    public IEnumerable<(long Index, T Value)> Entries(long first = 0)
    {
        for (long index = first; Next(ref index) is { } value; index++) yield return (index, value);
    }
}

/// <summary>One page of a <see cref="SparseMap{T}"/>: child pages, or entries at the last level.</summary>
internal sealed class MapPage
{
    public const int Bits = 9;

    /// <summary>Slots in use (changed by the map's one writer only).</summary>
    public int Used;

    public MapPageSlots Slots;
}

[InlineArray(1 << MapPage.Bits)]
internal struct MapPageSlots
{
    private object? _slot;
}
