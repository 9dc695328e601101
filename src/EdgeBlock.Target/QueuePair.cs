using EdgeBlock.Nvme;

namespace EdgeBlock.Target;

/// <summary>
/// The target's side of one submission/completion queue pair (a TCP connection on NVMe/TCP).
/// Owned by one transport queue; nothing here is shared with other queues on the I/O path.
/// </summary>
public sealed class QueuePair
{
    private ushort _sqhd;

    public QueuePair(NvmeTarget target, ITransportQueue transport)
    {
        Target = target;
        Transport = transport;
    }

    public NvmeTarget Target { get; }
    public ITransportQueue Transport { get; }

    /// <summary>Set by a successful Connect.</summary>
    public Controller? Controller { get; internal set; }
    public ushort Qid { get; internal set; }
    /// <summary>Number of entries (SQSIZE + 1); 0 before Connect.</summary>
    public int Entries { get; internal set; }
    /// <summary>The host asked for no SQ flow control (Connect CATTR): completions may be elided.</summary>
    public bool SqFlowControlDisabled { get; internal set; }
    public bool IsConnected => Controller != null;

    /// <summary>
    /// False from a Connect that set AUTHREQ.ATR until DH-HMAC-CHAP succeeds on this queue: until then only
    /// Connect, Authentication Send/Receive and Disconnect run (others end with Authentication Required).
    /// </summary>
    public bool IsAuthenticated { get => _authenticated; internal set => _authenticated = value; }
    /// <summary>Written by DH-HMAC-CHAP steps on the thread pool, read by Parse on the receive loop.</summary>
    private volatile bool _authenticated = true;

    /// <summary>This queue's DH-HMAC-CHAP transaction (created by the first Authentication Send).</summary>
    internal DhchapTransaction? Authentication { get; set; }

    /// <summary>Set on every command; the keep-alive timer clears it (traffic-based keep alive).</summary>
    internal volatile bool ActivitySinceLastCheck;

    /// <summary>The current SQ head pointer reported in every completion.</summary>
    public ushort Sqhd => _sqhd;

    /// <summary>Validates a command and decides its data transfer. False: the request carries an error status.</summary>
    public bool Parse(NvmeRequest request)
    {
        if (Entries != 0) _sqhd = (ushort)((_sqhd + 1) % Entries);
        ActivitySinceLastCheck = true;
        return Target.Parse(this, request);
    }

    /// <summary>Runs a parsed command whose host-to-controller data (if any) is in place.</summary>
    public ValueTask ExecuteAsync(NvmeRequest request) => Target.ExecuteAsync(this, request);

    /// <summary>Builds the 16-byte CQE for a finished request.</summary>
    public void WriteCompletion(NvmeRequest request, Span<byte> cqe) =>
        CompletionQueueEntry.Write(cqe, request.Result, _sqhd, Qid, request.CommandId, request.Status);

    /// <summary>The transport lost the connection or closed it; the controller forgets this queue.</summary>
    public void OnDisconnected() => Controller?.OnQueueDisconnected(this);

    internal void OnConnected(Controller controller, ushort qid, int entries, bool sqFlowControlDisabled)
    {
        Controller = controller;
        Qid = qid;
        Entries = entries;
        SqFlowControlDisabled = sqFlowControlDisabled;
        _sqhd = (ushort)(1 % entries);
    }
}
