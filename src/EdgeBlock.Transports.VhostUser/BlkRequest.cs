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
    public AlignedBuffer? Bounce;
    public bool UsesBounce;

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
        RangeCount = 0;
        RangeIndex = 0;
        DataLength = 0;
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
            Handler.LogDeviceException(e);
            status = BlockStatus.InternalError;
        }
        Awaiter = default;
        Handler.OnDeviceCompleted(this, status);
    }

    public void ReleaseBuffers()
    {
        ((IDisposable?)Bounce)?.Dispose();
        Bounce = null;
    }
}
