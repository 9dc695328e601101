using System.Runtime.CompilerServices;
using EdgeBlock.Storage;

namespace EdgeBlock.Transports.VhostUser;

/// <summary>
/// The state of one in-flight virtio-blk request. A queue has one slot per descriptor index and
/// uses the chain's head index to pick it (a head cannot be reused by the driver before we
/// return it), so slots never need a free list. Everything here is reused request after request.
/// </summary>
internal sealed class BlkRequest : VirtqElement
{
    public BlkRequest(VirtioBlkHandler handler, ushort head)
        : base(head)
    {
        Handler = handler;
        Continuation = OnDeviceCompleted;
    }

    public readonly VirtioBlkHandler Handler;
    public readonly GuestBufferManager GuestBuffer = new();
    public readonly Action Continuation;

    public uint Type;
    public ulong Sector;
    public nint StatusPointer;

    // Data transfer (IN/OUT).
    public long Lba;
    public int DataLength;
    /// <summary>Rented from the pool while the request needs it (data spread over guest buffers), at most the pool's largest buffer.</summary>
    public AlignedBuffer? Bounce;
    public bool UsesBounce;
    /// <summary>Bytes of the transfer done through the bounce buffer so far, and the piece in the device now.</summary>
    public int BounceDone;
    public int BouncePiece;

    // DISCARD / WRITE_ZEROES ranges, copied out of guest memory once.
    public readonly byte[] Ranges = new byte[VirtioBlkHandler.MaxDiscardSegments * Virtio.DiscardSegmentSize];
    public int RangeCount;
    public int RangeIndex;

    public ValueTaskAwaiter<BlockStatus> Awaiter;

    public override void Reset()
    {
        base.Reset();
        StatusPointer = 0;
        UsesBounce = false;
        BounceDone = 0;
        BouncePiece = 0;
        RangeCount = 0;
        RangeIndex = 0;
        DataLength = 0;
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
            Handler.LogDeviceException(e);
            status = BlockStatus.InternalError;
        }
        Awaiter = default;
        Handler.OnDeviceCompleted(this, status);
    }

    /// <summary>Gives the bounce buffer back to the pool (the request no longer needs it).</summary>
    public void ReleaseBuffers()
    {
        if (Bounce is { } bounce)
        {
            Bounce = null;
            Handler.ReturnBounce(bounce);
        }
    }
}
