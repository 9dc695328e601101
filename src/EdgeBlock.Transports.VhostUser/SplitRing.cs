using System.Runtime.CompilerServices;

namespace EdgeBlock.Transports.VhostUser;

/// <summary>One entry of a descriptor table (struct virtq_desc), read once from guest memory.</summary>
internal readonly struct VirtqDesc
{
    public readonly ulong Addr;
    public readonly uint Len;
    public readonly ushort Flags;
    public readonly ushort Next;

    public VirtqDesc(ulong addr, uint len, ushort flags, ushort next)
    {
        Addr = addr;
        Len = len;
        Flags = flags;
        Next = next;
    }

    public bool HasNext => (Flags & Virtio.DescFNext) != 0;
    public bool IsWrite => (Flags & Virtio.DescFWrite) != 0;
    public bool IsIndirect => (Flags & Virtio.DescFIndirect) != 0;
}

/// <summary>
/// The three parts of a split virtqueue (virtio 1.1, 2.6) as host pointers into mapped guest
/// memory, and the accessors a device needs. Every offset of the layout is here and nowhere else:
///   desc:  struct virtq_desc[Size], 16 bytes each
///   avail: flags u16, idx u16, ring u16[Size], used_event u16 (EVENT_IDX)
///   used:  flags u16, idx u16, ring {id u32, len u32}[Size], avail_event u16 (EVENT_IDX)
/// A value type with no state of its own: copying it costs nothing on the hot path.
/// </summary>
internal readonly unsafe struct SplitRing
{
    public const int DescSize = 16;
    private const int IdxOffset = 2;
    private const int RingOffset = 4;
    private const int UsedElemSize = 8;

    private readonly nint _desc, _avail, _used;

    private SplitRing(nint desc, nint avail, nint used, int size)
    {
        _desc = desc;
        _avail = avail;
        _used = used;
        Size = size;
    }

    public int Size { get; }
    public nint DescTable => _desc;

    public static ulong DescBytes(int size) => DescSize * (ulong)size;
    public static ulong AvailBytes(int size) => RingOffset + 2 * (ulong)size + 2;
    public static ulong UsedBytes(int size) => RingOffset + UsedElemSize * (ulong)size + 2;

    /// <summary>Whether the three parts of a ring of config.Size entries lie inside the memory table.</summary>
    public static bool Fits(GuestMemory memory, VirtqConfig config) =>
        memory.TryTranslateUser(config.DescUserAddress, DescBytes(config.Size), out _) &&
        memory.TryTranslateUser(config.AvailUserAddress, AvailBytes(config.Size), out _) &&
        memory.TryTranslateUser(config.UsedUserAddress, UsedBytes(config.Size), out _);

    /// <summary>Translates and checks the ring's addresses (inside guest memory, aligned as 2.6 requires).</summary>
    public static bool TryMap(GuestMemory memory, VirtqConfig config, out SplitRing ring, out string? error)
    {
        ring = default;
        int size = config.Size;
        if (!memory.TryTranslateUser(config.DescUserAddress, DescBytes(size), out nint desc) ||
            !memory.TryTranslateUser(config.AvailUserAddress, AvailBytes(size), out nint avail) ||
            !memory.TryTranslateUser(config.UsedUserAddress, UsedBytes(size), out nint used))
        {
            error = $"ring addresses (desc 0x{config.DescUserAddress:x}, avail 0x{config.AvailUserAddress:x}, used 0x{config.UsedUserAddress:x}) of {size} entries are not inside the shared memory";
            return false;
        }
        if ((desc & 15) != 0 || (avail & 1) != 0 || (used & 3) != 0)
        {
            error = "misaligned ring addresses";
            return false;
        }
        ring = new SplitRing(desc, avail, used, size);
        error = null;
        return true;
    }

    /// <summary>Entry index of a free-running ring index (Size is a power of two).</summary>
    private int Slot(ushort idx) => idx & (Size - 1);

    /// <summary>avail->idx: where the driver will put its next head.</summary>
    public ushort AvailIdx => Volatile.Read(ref *(ushort*)(_avail + IdxOffset));

    /// <summary>avail->ring[idx mod Size]: the head of a chain the driver made available.</summary>
    public ushort AvailRing(ushort idx) => Volatile.Read(ref *(ushort*)(_avail + RingOffset + 2 * Slot(idx)));

    /// <summary>avail->used_event: the driver wants an interrupt once the used index passes it.</summary>
    public ushort UsedEvent => Volatile.Read(ref *(ushort*)(_avail + RingOffset + 2 * Size));

    /// <summary>used->idx as it is in guest memory (read when a ring starts).</summary>
    public ushort UsedIdx => Volatile.Read(ref *(ushort*)(_used + IdxOffset));

    /// <summary>used->avail_event: the driver kicks once it makes this entry available.</summary>
    public void SetAvailEvent(ushort idx) => Volatile.Write(ref *(ushort*)(_used + RingOffset + UsedElemSize * Size), idx);

    /// <summary>Fills used->ring[idx mod Size]; the driver sees it only once PublishUsedIdx moves past it.</summary>
    public void WriteUsedElem(ushort idx, uint id, uint len)
    {
        byte* element = (byte*)(_used + RingOffset + UsedElemSize * Slot(idx));
        *(uint*)element = id;
        *(uint*)(element + 4) = len;
    }

    /// <summary>Stores used->idx after the elements it covers (a release store).</summary>
    public void PublishUsedIdx(ushort idx) => Volatile.Write(ref *(ushort*)(_used + IdxOffset), idx);

    /// <summary>Reads entry index of a descriptor table (the ring's own or an indirect one), each field once.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static VirtqDesc ReadDesc(nint table, int index)
    {
        // The guest may change the descriptor under our feet: what we check is what we use.
        byte* d = (byte*)(table + index * DescSize);
        return new VirtqDesc(*(ulong*)d, *(uint*)(d + 8), *(ushort*)(d + 12), *(ushort*)(d + 14));
    }

    /// <summary>
    /// vring_need_event of the spec (2.7.10): whether moving the used index from old to current
    /// passed event, all three free-running 16-bit counters.
    /// </summary>
    public static bool NeedEvent(ushort eventIdx, ushort current, ushort old) =>
        (ushort)(current - eventIdx - 1) < (ushort)(current - old);
}
