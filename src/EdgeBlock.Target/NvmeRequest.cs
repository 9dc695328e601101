using EdgeBlock.Nvme;

namespace EdgeBlock.Target;

/// <summary>Which way a command's data moves.</summary>
public enum DataDirection : byte
{
    None,
    /// <summary>Host to controller (writes, Connect data, DSM ranges).</summary>
    HostToController,
    /// <summary>Controller to host (reads, Identify, log pages).</summary>
    ControllerToHost,
}

/// <summary>
/// One command in flight. Preallocated by the transport (one per queue slot) and reused:
/// the transport copies the SQE in, the target parses it (direction, length), the transport
/// moves the data, the target executes it, and the transport sends the completion.
/// </summary>
public sealed class NvmeRequest
{
    private readonly byte[] _sqe = new byte[SubmissionQueueEntry.Size];

    public NvmeRequest(int tag) => Tag = tag;

    /// <summary>The transport's slot index (used as the TCP transfer tag).</summary>
    public int Tag { get; }

    public Span<byte> SqeBytes => _sqe;
    public SubmissionQueueEntry Sqe => new(_sqe);
    public ushort CommandId => (ushort)(_sqe[2] | _sqe[3] << 8);

    /// <summary>Set by Parse: bytes the command transfers and in which direction.</summary>
    public int DataLength { get; internal set; }
    public DataDirection Direction { get; internal set; }

    /// <summary>
    /// Set by Parse for commands whose data may be described by a longer SGL than they use
    /// (Dataset Management: Linux always sends a 4 KiB range buffer, as nvmet accepts).
    /// </summary>
    public int MaxDataLength { get; internal set; }

    /// <summary>Accepts an SGL longer than DataLength when the command allows it; the extra bytes are received and ignored.</summary>
    public bool TryAcceptSglLength(uint sglLength)
    {
        if (sglLength == DataLength) return true;
        if (sglLength < DataLength || sglLength > MaxDataLength) return false;
        DataLength = (int)sglLength;
        return true;
    }

    /// <summary>The data buffer, sized to DataLength; owned by the transport, borrowed by the target until completion.</summary>
    public Memory<byte> Data { get; set; }

    /// <summary>Completion DW0/DW1.</summary>
    public ulong Result { get; set; }
    public NvmeStatus Status { get; set; }

    /// <summary>Set by Parse: the command table's entry that Execute runs (null: parse failed).</summary>
    internal NvmeCommand? Command { get; set; }
    internal Namespace? Namespace { get; set; }
    /// <summary>Set by Parse of an NVM command: when it arrived (Stopwatch timestamp), for the latency histograms.</summary>
    internal long StartTimestamp { get; set; }

    /// <summary>
    /// Set by an Asynchronous Event Request that was parked: the transport sends nothing now and keeps
    /// the slot until <see cref="ITransportQueue.CompleteDeferred"/> is called.
    /// </summary>
    public bool CompletionDeferred { get; internal set; }

    /// <summary>Set by Disconnect: the transport closes the queue once this completion is sent.</summary>
    public bool DisconnectAfterCompletion { get; internal set; }

    /// <summary>Offset of the offending field for the error log (0xFFFF: none).</summary>
    internal ushort ErrorLocation { get; set; }

    /// <summary>Clears per-command state before the slot is reused.</summary>
    public void Reset()
    {
        DataLength = 0;
        MaxDataLength = 0;
        Direction = DataDirection.None;
        Data = Memory<byte>.Empty;
        Result = 0;
        Status = NvmeStatus.Success;
        Command = null;
        Namespace = null;
        ErrorLocation = SqeOffset.None;
        DisconnectAfterCompletion = false;
        CompletionDeferred = false;
    }

    /// <summary>Fails the command; returns false so parsers can 'return req.Fail(...)'.</summary>
    internal bool Fail(NvmeStatus status, ushort errorLocation = SqeOffset.None)
    {
        Status = status;
        ErrorLocation = errorLocation;
        Command = null;
        return false;
    }

    /// <summary>Parse's success: the command moves <paramref name="length"/> bytes in <paramref name="direction"/>.</summary>
    internal bool Accept(DataDirection direction, int length)
    {
        Direction = direction;
        DataLength = length;
        return true;
    }
}
