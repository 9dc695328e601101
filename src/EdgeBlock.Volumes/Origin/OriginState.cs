using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Numerics;

namespace EdgeBlock.Volumes;

/// <summary>
/// A volume's origin while it is attached: one bit per 4 KiB block below the origin's length says the block is
/// <em>resolved</em> — the volume holds its content (copied, written by the guest, or discarded) — so it reads from
/// the volume; a clear bit reads from the origin. Bits are only ever set, and only after the volume's own change
/// completed (its map updated in memory), and a commit captures the bits before the map, so a commit that carries a
/// bit also carries what the volume holds there.
/// The bitmap is saved in pages of <see cref="PageBytes"/> (128 MiB of volume each) marked dirty like map entries.
/// Blocks at or past the origin's length are resolved from the start (a volume larger than its image).
/// </summary>
internal sealed class OriginState
{
    public const int PageBytes = 4096;
    private const int PageWords = PageBytes / 8;
    public const int BlocksPerPage = PageBytes * 8;

    /// <summary>Blocks the copy moves at a time, and the unit the copy and first writes serialise on (1 MiB).</summary>
    public const int UnitBlocks = 256;

    private const int StripeCount = 64;
    private readonly ulong[] _words;
    private readonly int[] _pageDirty;
    private readonly SemaphoreSlim[] _stripes = new SemaphoreSlim[StripeCount];

    public OriginState(long volumeId, VolumeOriginRecord record)
    {
        VolumeId = volumeId;
        Record = record;
        Blocks = (record.LengthBytes + PoolLayout.BlockSize - 1) / PoolLayout.BlockSize;
        _words = new ulong[(Blocks + 63) / 64];
        _pageDirty = new int[Pages];
        for (int i = 0; i < _stripes.Length; i++) _stripes[i] = new SemaphoreSlim(1, 1);
    }

    /// <summary>Memory of the resolved-block bitmap of an origin of that length.</summary>
    public static long BitmapBytes(long lengthBytes) => ((lengthBytes - 1) / PoolLayout.BlockSize + 64) / 64 * 8;

    public long VolumeId { get; }
    public VolumeOriginRecord Record { get; }

    /// <summary>Blocks that may read from the origin (its length in blocks).</summary>
    public long Blocks { get; }

    public long Pages => (_words.Length + PageWords - 1) / PageWords;

    /// <summary>Blocks resolved so far.</summary>
    public long Resolved;

    /// <summary>Bitmap pages changed since the last commit.</summary>
    public readonly ConcurrentQueue<long> DirtyPages = new();

    /// <summary>The origin, once opened (checked against the record) for the first open or copy after the pool opened.</summary>
    public IVolumeOrigin? Source;

    /// <summary>Why the origin could not be opened (shown by `volume show`), null when it is open or not yet tried.</summary>
    public string? Problem;

    /// <summary>Origin bytes guest reads handed to copy-on-read that are not yet in the volume (bounded by the devices).</summary>
    public long CopyOnReadBytes;

    /// <summary>Origin reads in flight: the origin is closed only when none is.</summary>
    public int Reads;

    /// <summary>Set once every block is resolved and the origin dropped: devices pass everything through.</summary>
    public volatile bool Done;

    /// <summary>A copy runs (under the pool's metadata lock).</summary>
    public bool Copying;

    /// <summary>The record must be written at the next commit.</summary>
    public bool RecordDirty;

    public bool AllDone => Interlocked.Read(ref Resolved) >= Blocks;

    public SemaphoreSlim StripeOf(long block) => _stripes[block / UnitBlocks % StripeCount];

    public bool IsResolved(long block) => block >= Blocks || (Volatile.Read(ref _words[block >> 6]) & (1UL << (int)(block & 63))) != 0;

    /// <summary>The length of the run of blocks from first (at most max) that are all resolved or all not; which one in resolved.</summary>
    public long Run(long first, long max, out bool resolved)
    {
        resolved = IsResolved(first);
        long n = 1;
        while (n < max)
        {
            long block = first + n;
            if (block >= Blocks) return resolved ? max : n; // past the origin everything is resolved
            // Whole words at once: a discard of a whole large volume walks 64 blocks per step.
            if ((block & 63) == 0 && n + 64 <= max && block + 64 <= Blocks
                && Volatile.Read(ref _words[block >> 6]) == (resolved ? ulong.MaxValue : 0))
            {
                n += 64;
                continue;
            }
            if (IsResolved(block) != resolved) break;
            n++;
        }
        return n;
    }

    public bool AllResolved(long first, long count) => Run(first, count, out bool resolved) == count && resolved;

    /// <summary>Marks blocks resolved (after the volume's change completed) and their pages dirty.</summary>
    public void Resolve(long first, long count)
    {
        long end = Math.Min(first + count, Blocks);
        for (long block = first; block < end;)
        {
            int bit = (int)(block & 63);
            int n = (int)Math.Min(64 - bit, end - block);
            ulong mask = (n == 64 ? ulong.MaxValue : ((1UL << n) - 1)) << bit;
            ulong old = Interlocked.Or(ref _words[block >> 6], mask);
            long added = BitOperations.PopCount(mask & ~old);
            if (added > 0)
            {
                Interlocked.Add(ref Resolved, added);
                long page = (block >> 6) / PageWords;
                if (Interlocked.Exchange(ref _pageDirty[page], 1) == 0) DirtyPages.Enqueue(page);
            }
            block += n;
        }
    }

    /// <summary>A page's saved form (clears its dirty mark first: a bit set meanwhile marks it again).</summary>
    public byte[] EncodePage(long page)
    {
        Interlocked.Exchange(ref _pageDirty[page], 0);
        var value = new byte[PageBytes];
        long first = page * PageWords;
        for (int i = 0; i < PageWords && first + i < _words.Length; i++)
            BinaryPrimitives.WriteUInt64LittleEndian(value.AsSpan(i * 8), Volatile.Read(ref _words[first + i]));
        return value;
    }

    /// <summary>Loads a saved page (at pool open).</summary>
    public void LoadPage(long page, ReadOnlySpan<byte> value)
    {
        if (page < 0 || page >= Pages || value.Length != PageBytes)
            throw new InvalidDataException($"origin bitmap page {page} of {value.Length} bytes: the origin has {Pages} pages of {PageBytes} bytes");
        long first = page * PageWords;
        for (int i = 0; i < PageWords && first + i < _words.Length; i++)
        {
            ulong word = BinaryPrimitives.ReadUInt64LittleEndian(value[(i * 8)..]);
            if (first + i == _words.Length - 1 && Blocks % 64 != 0) word &= (1UL << (int)(Blocks % 64)) - 1;
            _words[first + i] = word;
            Resolved += BitOperations.PopCount(word);
        }
    }

    /// <summary>Marks a page dirty again (a failed commit carried it).</summary>
    public void Redirty(long page)
    {
        if (Interlocked.Exchange(ref _pageDirty[page], 1) == 0) DirtyPages.Enqueue(page);
    }
}
