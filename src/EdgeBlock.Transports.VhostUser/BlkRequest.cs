using System.Runtime.CompilerServices;
using EdgeBlock.Storage;

namespace EdgeBlock.Transports.VhostUser;

/// <summary>One guest buffer (after translation): host pointer and length.</summary>
internal struct Segment
{
    public nint Pointer;
    public int Length;
}

/// <summary>
/// The state of one in-flight virtio-blk request. A queue has one slot per descriptor index and
/// uses the chain's head index to pick it (a head cannot be reused by the driver before we
/// return it), so slots never need a free list. Everything here is reused request after request.
/// </summary>
internal sealed class BlkRequest
{
    public BlkRequest(VirtQueue queue, ushort head)
    {
        Queue = queue;
        Head = head;
        Continuation = OnDeviceCompleted;
    }

    public readonly VirtQueue Queue;
    public readonly ushort Head;
    public readonly GuestBufferManager GuestBuffer = new();
    public readonly Action Continuation;

    /// <summary>Readable (driver-to-device) and writable segments in chain order.</summary>
    public Segment[] Readable = new Segment[4];
    public Segment[] Writable = new Segment[4];
    public int ReadableCount;
    public int WritableCount;
    public long ReadableBytes;
    public long WritableBytes;

    public bool InFlight;
    public uint Type;
    public ulong Sector;
    public nint StatusPointer;
    public uint UsedLength;

    // Data transfer (IN/OUT).
    public long Lba;
    public int DataLength;
    public AlignedBuffer? Bounce;
    public bool UsesBounce;

    // DISCARD / WRITE_ZEROES ranges, copied out of guest memory once.
    public readonly byte[] Ranges = new byte[VirtQueue.MaxDiscardSegments * Virtio.DiscardSegmentSize];
    public int RangeCount;
    public int RangeIndex;

    public ValueTaskAwaiter<BlockStatus> Awaiter;

    public void Reset()
    {
        ReadableCount = 0;
        WritableCount = 0;
        ReadableBytes = 0;
        WritableBytes = 0;
        StatusPointer = 0;
        UsedLength = 0;
        UsesBounce = false;
        RangeCount = 0;
        RangeIndex = 0;
        DataLength = 0;
    }

    public void AddSegment(bool writable, nint pointer, int length)
    {
        if (writable)
        {
            if (WritableCount == Writable.Length)
            {
                Array.Resize(ref Writable, Writable.Length * 2);
            }
            Writable[WritableCount++] = new Segment { Pointer = pointer, Length = length };
            WritableBytes += length;
        }
        else
        {
            if (ReadableCount == Readable.Length)
            {
                Array.Resize(ref Readable, Readable.Length * 2);
            }
            Readable[ReadableCount++] = new Segment { Pointer = pointer, Length = length };
            ReadableBytes += length;
        }
    }

    /// <summary>Bounce buffer of at least length bytes, kept for the next requests.</summary>
    public AlignedBuffer EnsureBounce(int length)
    {
        if (Bounce is null || Bounce.Length < length)
        {
            ((IDisposable?)Bounce)?.Dispose();
            int size = Math.Max(64 * 1024, (int)Math.Min(int.MaxValue, ((long)length + 65535) & ~65535L));
            Bounce = new AlignedBuffer(size);
        }
        return Bounce;
    }

    private void OnDeviceCompleted()
    {
        BlockStatus status;
        try
        {
            status = Awaiter.GetResult();
        }
        catch (Exception e)
        {
            Queue.LogDeviceException(e);
            status = BlockStatus.InternalError;
        }
        Awaiter = default;
        Queue.OnDeviceCompleted(this, status);
    }

    public void ReleaseBuffers()
    {
        ((IDisposable?)Bounce)?.Dispose();
        Bounce = null;
    }
}
