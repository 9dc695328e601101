using EdgeBlock.Storage;
using EdgeBlock.Target;

namespace EdgeBlock.Transports.Tcp;

/// <summary>Where a command slot is in its life on the connection (nvmet's request states, fewer of them).</summary>
internal enum TcpCommandState : byte
{
    Free,
    /// <summary>R2T sent (or queued); H2CData PDUs are arriving.</summary>
    AwaitingH2CData,
    /// <summary>Handed to the target.</summary>
    Executing,
    /// <summary>An AER parked in the controller.</summary>
    Deferred,
    /// <summary>Queued for the send loop (R2T or completion).</summary>
    Sending,
}

/// <summary>A preallocated command slot: the target's request plus the transport's buffer and transfer progress.</summary>
internal sealed class TcpCommand : IDisposable
{
    private AlignedBuffer? _buffer;

    public TcpCommand(int tag)
    {
        Request = new NvmeRequest(tag);
    }

    public NvmeRequest Request { get; }

    // Parking of deferred completions (AERs): the event may arrive before the slot is marked parked.
    public const int DeferNone = 0, DeferParked = 1, DeferCompleted = 2;
    public int DeferState;
    public ushort Tag => (ushort)Request.Tag;
    public TcpCommandState State { get; set; }
    /// <summary>H2C bytes received so far (in-order transfer).</summary>
    public int H2CReceived { get; set; }
    /// <summary>An H2CData PDU of this command failed its data digest; the command completes with an error.</summary>
    public bool DataDigestFailed { get; set; }

    /// <summary>Gives the request a buffer of at least length bytes, reusing the slot's buffer (grown in 4 KiB steps).</summary>
    public void AttachBuffer(int length)
    {
        if (length == 0) { Request.Data = Memory<byte>.Empty; return; }
        if (_buffer == null || _buffer.Length < length)
        {
            ((IDisposable?)_buffer)?.Dispose();
            _buffer = new AlignedBuffer((length + 4095) & ~4095);
        }
        Request.Data = _buffer.Memory[..length];
    }

    public void Dispose()
    {
        ((IDisposable?)_buffer)?.Dispose();
        _buffer = null;
    }
}
