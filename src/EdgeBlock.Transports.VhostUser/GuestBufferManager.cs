using System.Buffers;

namespace EdgeBlock.Transports.VhostUser;

/// <summary>
/// A Memory&lt;byte&gt; over a piece of mapped guest memory, so a request whose data lies in one
/// descriptor is read or written by the device in place (no copy). One per request slot, retargeted
/// for each request: no allocation per I/O. Valid only while the guest memory stays mapped,
/// which the queue guarantees by draining its requests before any mapping goes away.
/// </summary>
internal sealed unsafe class GuestBufferManager : MemoryManager<byte>
{
    private byte* _pointer;
    private int _length;

    public Memory<byte> Retarget(nint pointer, int length)
    {
        _pointer = (byte*)pointer;
        _length = length;
        return CreateMemory(length);
    }

    public override Span<byte> GetSpan() => new(_pointer, _length);

    public override MemoryHandle Pin(int elementIndex = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(elementIndex);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(elementIndex, _length);
        return new MemoryHandle(_pointer + elementIndex);
    }

    public override void Unpin()
    {
    }

    protected override void Dispose(bool disposing)
    {
        _pointer = null;
        _length = 0;
    }
}
