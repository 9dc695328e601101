using System.Numerics;

namespace EdgeBlock.Volumes;

/// <summary>
/// One logical extent of one volume: where its data lives and which of its 4 KiB blocks hold
/// data (the others read as zeroes). Each volume owns its entries; a snapshot gets copies that
/// point to the same physical extent, whose sharing is counted in the pool's refcounts, so a
/// discard on one volume never changes what another sees.
/// </summary>
internal sealed class ExtentMapEntry
{
    public ExtentMapEntry(int drive, long physical, int extentSize)
    {
        Drive = drive;
        Physical = physical;
        Valid = new ulong[WordsFor(extentSize)];
    }

    public static int WordsFor(int extentSize) => Math.Max(1, extentSize / PoolLayout.BlockSize / 64);

    /// <summary>Managed bytes of one entry: the object (header, fields) and its bitmap array.</summary>
    public static long BytesFor(int extentSize) => 48 + 24 + WordsFor(extentSize) * 8L;

    public int Drive { get; }
    public long Physical { get; }
    public byte Flags => 0;

    /// <summary>Valid-block bitmap. Bits are set only after the block's data has been written.</summary>
    public readonly ulong[] Valid;

    /// <summary>I/Os using this entry's physical extent right now; the extent is not reused until 0.</summary>
    public int InFlight;

    /// <summary>1 while the entry waits in its volume's dirty queue, so it is queued once.</summary>
    public int Dirty;

    public ExtentMapEntry CopyForSnapshot(int extentSize)
    {
        var copy = new ExtentMapEntry(Drive, Physical, extentSize);
        for (int i = 0; i < Valid.Length; i++) copy.Valid[i] = Volatile.Read(ref Valid[i]);
        return copy;
    }

    public bool AllValid(int first, int count) => CountValid(first, count) == count;

    public bool NoneValid()
    {
        for (int i = 0; i < Valid.Length; i++)
        {
            if (Volatile.Read(ref Valid[i]) != 0) return false;
        }
        return true;
    }

    public int CountValid(int first, int count)
    {
        int n = 0;
        for (int b = first; b < first + count; b++)
        {
            if (IsValid(b)) n++;
        }
        return n;
    }

    public int CountValid()
    {
        int n = 0;
        foreach (ulong w in Valid) n += BitOperations.PopCount(w);
        return n;
    }

    public bool IsValid(int block) => (Volatile.Read(ref Valid[block >> 6]) & (1UL << (block & 63))) != 0;

    /// <summary>Marks blocks valid; true when some bit changed (the entry must be saved).</summary>
    public bool SetValid(int first, int count) => Update(first, count, set: true);

    /// <summary>Marks blocks invalid (they read as zeroes); true when some bit changed.</summary>
    public bool ClearValid(int first, int count) => Update(first, count, set: false);

    private bool Update(int first, int count, bool set)
    {
        bool changed = false;
        int block = first, end = first + count;
        while (block < end)
        {
            int word = block >> 6, bit = block & 63;
            int span = Math.Min(64 - bit, end - block);
            ulong mask = (span == 64 ? ulong.MaxValue : ((1UL << span) - 1)) << bit;
            ulong before = set ? Interlocked.Or(ref Valid[word], mask) : Interlocked.And(ref Valid[word], ~mask);
            changed |= set ? (before & mask) != mask : (before & mask) != 0;
            block += span;
        }
        return changed;
    }
}
