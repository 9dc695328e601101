namespace EdgeBlock.Volumes;

/// <summary>
/// The chunks of one extent-sized range of a chunk volume (created on its first write).
/// A slot is read without locks while writers replace it, so each slot is a small seqlock:
/// a writer makes Seq odd, stores location and checksum, makes Seq even; a reader retries
/// until it saw the same even Seq before and after. Writers of one chunk are serialised by
/// the volume's stripe locks, so Seq has one writer at a time.
/// </summary>
internal sealed class ChunkGroup
{
    private readonly ChunkSlot[] _slots;

    public ChunkGroup(int chunks)
    {
        _slots = new ChunkSlot[chunks];
        Dirty = new ulong[Math.Max(1, (chunks + 63) / 64)];
    }

    public int Count => _slots.Length;

    /// <summary>Managed bytes of a group of that many chunks: the object, its slots (16 bytes each) and its dirty bits.</summary>
    public static long BytesFor(int chunks) => 40 + 24 + chunks * 16L + 24 + Math.Max(1, (chunks + 63) / 64) * 8L;

    /// <summary>Chunks changed since the last commit, one bit each.</summary>
    public readonly ulong[] Dirty;

    /// <summary>1 while the group waits in its volume's dirty queue.</summary>
    public int Queued;

    public (ChunkLocation Location, uint Crc) Read(int chunk)
    {
        ref ChunkSlot slot = ref _slots[chunk];
        var spinner = new SpinWait();
        while (true)
        {
            int before = Volatile.Read(ref slot.Seq);
            if ((before & 1) == 0)
            {
                ulong location = Volatile.Read(ref slot.Location);
                uint crc = Volatile.Read(ref slot.Crc);
                Interlocked.MemoryBarrier();
                if (Volatile.Read(ref slot.Seq) == before) return (new ChunkLocation(location), crc);
            }
            spinner.SpinOnce();
        }
    }

    /// <summary>Whether no chunk of the group is mapped (all read as zeroes).</summary>
    public bool IsEmpty()
    {
        for (int i = 0; i < _slots.Length; i++)
        {
            if (Read(i).Location.IsMapped) return false;
        }
        return true;
    }

    /// <summary>Replaces a chunk's slot (its writer holds the chunk's stripe lock).</summary>
    public void Write(int chunk, ChunkLocation location, uint crc)
    {
        ref ChunkSlot slot = ref _slots[chunk];
        Interlocked.Increment(ref slot.Seq);
        Volatile.Write(ref slot.Location, location.Packed);
        Volatile.Write(ref slot.Crc, crc);
        Interlocked.Increment(ref slot.Seq);
    }

    /// <summary>Marks a chunk changed; true when the group must be queued for the next commit.</summary>
    public bool MarkDirty(int chunk)
    {
        Interlocked.Or(ref Dirty[chunk >> 6], 1UL << (chunk & 63));
        return Interlocked.Exchange(ref Queued, 1) == 0;
    }

    private struct ChunkSlot
    {
        public ulong Location;
        public uint Crc;
        public int Seq;
    }
}
