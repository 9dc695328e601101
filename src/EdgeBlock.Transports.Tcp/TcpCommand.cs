using EdgeBlock.Storage;
using EdgeBlock.Target;

namespace EdgeBlock.Transports.Tcp;

/// <summary>Where a command slot is in its life on the connection (nvmet's request states, fewer of them).</summary>
internal enum TcpCommandState : byte
{
    Free,
    /// <summary>Parsed; waits for the memory budget to give it a data buffer (before its R2T or its device read).</summary>
    AwaitingBuffer,
    /// <summary>R2T sent (or queued); H2CData PDUs are arriving.</summary>
    AwaitingH2CData,
    /// <summary>Handed to the target.</summary>
    Executing,
    /// <summary>An AER parked in the controller.</summary>
    Deferred,
    /// <summary>Queued for the send loop (R2T or completion).</summary>
    Sending,
}

/// <summary>
/// A preallocated command slot: the target's request plus transfer progress. The data buffer is rented from the
/// shared <see cref="DataBufferPool"/> when data must move and returned when the command is done with it, so an
/// idle slot holds no data memory.
/// </summary>
internal sealed class TcpCommand
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
    public bool HasBuffer => _buffer != null;

    /// <summary>Gives the request a rented buffer for its DataLength bytes.</summary>
    public void AttachBuffer(AlignedBuffer buffer)
    {
        System.Diagnostics.Debug.Assert(_buffer == null, "a slot holds one buffer at a time");
        _buffer = buffer;
        Request.Data = buffer.Memory[..Request.DataLength];
    }

    /// <summary>Takes the buffer back from the request (null: it had none).</summary>
    public AlignedBuffer? DetachBuffer()
    {
        var buffer = _buffer;
        _buffer = null;
        Request.Data = Memory<byte>.Empty;
        return buffer;
    }
}
