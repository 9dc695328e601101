using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using EdgeBlock.Interop;
using EdgeBlock.Nvme;
using EdgeBlock.Nvme.Tcp;
using EdgeBlock.Storage;
using EdgeBlock.Target;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Transports.Tcp;

/// <summary>
/// One NVMe/TCP connection = one queue pair. A receive loop parses PDUs and feeds the target;
/// a send loop is the socket's only writer and batches R2Ts, C2HData and responses into one send.
/// Command slots are preallocated (tag = index), so steady-state I/O allocates nothing.
/// </summary>
internal sealed partial class TcpQueue : ITransportQueue, ICompletionBatchWork
{
    /// <summary>Largest H2CData payload we accept (ICResp MAXH2CDATA); the host splits bigger transfers.</summary>
    private const int MaxH2CDataBytes = 64 * 1024;
    /// <summary>Holds the largest PDU: an H2CData of MaxH2CDataBytes (or a capsule with in-capsule data), plus headers.</summary>
    private const int RecvBufferBytes = 128 * 1024;
    /// <summary>The connection's own receive buffer: holds a capsule with the largest in-capsule data (16 KiB) and headers.</summary>
    private const int SmallRecvBufferBytes = 24 * 1024;
    /// <summary>
    /// PDU headers and payloads under GatherMinBytes: hundreds of completions batch into one send. Larger payloads
    /// go out from their command's buffer (gathered); without sendmsg they are copied, so the buffer holds one MDTS.
    /// </summary>
    private const int SendBufferBytes = 32 * 1024;
    /// <summary>Slots before Connect: the host sends nothing else until Connect completes.</summary>
    private const int InitialSlots = 4;

    private readonly Socket _socket;
    private readonly ILogger _logger;
    private readonly QueuePair _queuePair;
    private readonly DataBufferPool _buffers;
    /// <summary>
    /// Large receive buffers, for PDUs the connection's own small buffer cannot hold (H2CData of more than ~24 KiB):
    /// rented when such a PDU starts and given back once nothing is half-read, so a connection holds one only while
    /// large data arrives. Outside the memory budget: a receive loop must always be able to read (the data it waits for
    /// is what frees budget), and there is at most one per connection.
    /// </summary>
    private static readonly DataBufferPool s_receiveBuffers = new(1L << 40, RecvBufferBytes, retainBytes: 2L << 20);
    /// <summary>Mapped whole, touched only as far as PDUs reach: an idle connection's resident cost is a page or two.</summary>
    private readonly AlignedBuffer _smallRecv = AlignedBuffer.Map(SmallRecvBufferBytes);
    /// <summary>Where the receive loop reads: the small buffer, or a large one while a large PDU arrives.</summary>
    private AlignedBuffer _recv;
    private readonly byte[] _send;
    /// <summary>
    /// Tag = index. The array is sized by Connect to twice the queue's entries (replaced whole, entries kept); a slot
    /// is created the first time the host has that many commands outstanding, so an idle queue costs a few.
    /// </summary>
    private TcpCommand?[] _slots;
    private int _createdSlots;
    private readonly ConcurrentQueue<int> _freeSlots = new();
    private readonly ConcurrentQueue<(SendKind Kind, int Slot)> _outbox = new();
    private readonly AsyncSignal _sendSignal = new();
    private readonly CancellationTokenSource _closed = new();
    private int _closing;

    // Negotiated by ICReq/ICResp.
    private bool _icDone;
    private bool _headerDigest;
    private bool _dataDigest;
    private int _hostPda;

    /// <summary>The busy-poll window in Stopwatch ticks, 0 when off (see <see cref="PollReceive"/>).</summary>
    private readonly long _busyPollTicks;

    public TcpQueue(Socket socket, NvmeTarget target, ILogger logger, DataBufferPool buffers, TimeSpan busyPoll = default)
    {
        _busyPollTicks = (long)(busyPoll.TotalSeconds * Stopwatch.Frequency);
        _socket = socket;
        _logger = logger;
        _buffers = buffers;
        _queuePair = new QueuePair(target, this);
        _send = GC.AllocateUninitializedArray<byte>(
            Native.IsGatheredSendSupported ? SendBufferBytes : target.Limits.MaxTransferBytes + SendBufferBytes, pinned: true);
        _slots = [];
        _recv = _smallRecv;
        GrowSlots(InitialSlots);
        RemoteEndpoint = socket.RemoteEndPoint?.ToString() ?? "?";
        var local = (IPEndPoint)socket.LocalEndPoint!;
        var address = local.Address.IsIPv4MappedToIPv6 ? local.Address.MapToIPv4() : local.Address;
        LocalEndpoint = (address.ToString(), local.Port.ToString(), address.AddressFamily == AddressFamily.InterNetworkV6);
    }

    /// <summary>Command slots (tests: Connect sizes them from SQSIZE).</summary>
    internal int SlotCount => Volatile.Read(ref _slots).Length;

    /// <summary>
    /// Twice the queue's entries, as nvmet: a slot whose C2HData is being sent is freed after the send returns,
    /// by when the host may already have sent the next command. Published before any new tag is handed out.
    /// </summary>
    private void GrowSlots(int count)
    {
        lock (_freeSlots) // completions right after Connect and the receive loop may race here; this queue's lock only
        {
            var old = _slots;
            if (count <= old.Length) return;
            var slots = new TcpCommand?[count];
            old.CopyTo(slots, 0);
            Volatile.Write(ref _slots, slots);
        }
    }

    /// <summary>A new slot when every created one is busy; false when the queue has as many as it may.</summary>
    private bool TryCreateSlot(out int tag)
    {
        lock (_freeSlots)
        {
            tag = _createdSlots;
            if (tag >= _slots.Length) return false;
            _slots[tag] = new TcpCommand(tag);
            _createdSlots++;
            return true;
        }
    }

    /// <summary>Writes whose R2T went out and whose data has not all arrived: while there are some, large PDUs are coming.</summary>
    private int _awaitingData;

    /// <summary>
    /// After a receive batch: moves the <paramref name="filled"/> bytes of a partial PDU too large for the current buffer
    /// into a large one, or goes back to the small buffer once nothing is half-read and no write's data is expected.
    /// </summary>
    private void FitReceiveBuffer(int filled)
    {
        if (filled == 0)
        {
            if (Volatile.Read(ref _awaitingData) == 0) ReleaseLargeReceiveBuffer();
            return;
        }
        if (filled < PduHeader.Size || PduHeader.Read(_recv.Span).Plen <= _recv.Length) return;
        // The common header was checked before the PDU waited for more bytes: PLEN is within the largest PDU.
        if (!s_receiveBuffers.TryRent(RecvBufferBytes, 0, out var large))
            throw new InvalidOperationException("the receive buffer pool has no budget"); // 1 TiB: cannot happen
        _recv.Span[..filled].CopyTo(large.Span);
        _recv = large;
    }

    private void ReleaseLargeReceiveBuffer()
    {
        if (ReferenceEquals(_recv, _smallRecv)) return;
        var large = _recv;
        _recv = _smallRecv;
        s_receiveBuffers.Return(large);
    }

    private enum SendKind : byte { R2T, Response }

    public QueuePair QueuePair => _queuePair;
    public string RemoteEndpoint { get; }
    public (string Address, string ServiceId, bool IsIpv6) LocalEndpoint { get; }
    private NvmeTarget Target => _queuePair.Target;
    private static int MaxH2CData => MaxH2CDataBytes;
    private int InCapsuleLimit => _queuePair.Qid == 0 || !_queuePair.IsConnected
        ? Target.Limits.AdminInCapsuleDataBytes
        : Target.Limits.InCapsuleDataBytes;

    public async Task RunAsync()
    {
        var sendLoop = SendLoopAsync();
        try
        {
            await ReceiveLoopAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or OperationCanceledException)
        {
            // The peer went away or we closed the queue; both end the connection quietly.
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "queue {Remote}: receive loop failed", RemoteEndpoint);
        }
        finally
        {
            if (_termReq != null) await WaitForTermReqAsync().ConfigureAwait(false);
            Close(_termReq != null ? "protocol error" : "connection closed");
            await sendLoop.ConfigureAwait(false);
            Detach();
        }
    }

    // ---- ITransportQueue ---------------------------------------------------------

    public void CompleteDeferred(NvmeRequest request)
    {
        var cmd = _slots[request.Tag]!;
        // If the command is not parked yet (the event raced with its execution), CommandFinished sends it.
        if (Interlocked.Exchange(ref cmd.DeferState, TcpCommand.DeferCompleted) == TcpCommand.DeferParked)
            QueueSend(SendKind.Response, cmd);
    }

    public void Abort(string reason) => Close(reason);

    private void Close(string reason)
    {
        if (Interlocked.Exchange(ref _closing, 1) != 0) return;
        if (reason != "connection closed")
            _logger.LogInformation("queue {Qid} from {Remote} closed: {Reason}", _queuePair.Qid, RemoteEndpoint, reason);
        _closed.Cancel();
        try { _socket.Shutdown(SocketShutdown.Both); } catch (SocketException) { } catch (ObjectDisposedException) { }
        _socket.Close();
        _sendSignal.Set();
        _bufferSignal.Set();
    }

    private bool IsClosed => Volatile.Read(ref _closing) != 0;

    /// <summary>The connection is over: its controller forgets the queue and the idle slots give their buffers back.</summary>
    internal void Detach()
    {
        _queuePair.OnDisconnected();
        StopServingParked();
        ReleaseBuffers();
    }

    /// <summary>Buffers of commands still inside a device go back when they finish (see CommandFinished).</summary>
    private void ReleaseBuffers()
    {
        foreach (var cmd in _slots)
            if (cmd != null && cmd.State != TcpCommandState.Executing) ReleaseBuffer(cmd);
        ReleaseLargeReceiveBuffer();
        ((IDisposable)_smallRecv).Dispose();
        _closed.Dispose();
    }

    private void ReleaseBuffer(TcpCommand cmd)
    {
        if (cmd.DetachBuffer() is { } buffer) _buffers.Return(buffer);
    }

    // ---- execution -------------------------------------------------------------

    private void Execute(TcpCommand cmd)
    {
        cmd.State = TcpCommandState.Executing;
        ValueTask pending;
        try
        {
            pending = _queuePair.ExecuteAsync(cmd.Request);
        }
        catch (Exception ex)
        {
            FailUnexpected(cmd, ex);
            return;
        }
        if (pending.IsCompletedSuccessfully) CommandFinished(cmd);
        else _ = AwaitExecutionAsync(pending, cmd);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask AwaitExecutionAsync(ValueTask pending, TcpCommand cmd)
    {
        try
        {
            await pending.ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            FailUnexpected(cmd, ex);
            return;
        }
        CommandFinished(cmd);
    }

    /// <summary>A bug below us must not take the daemon down: the command fails with Internal Error.</summary>
    private void FailUnexpected(TcpCommand cmd, Exception ex)
    {
        _logger.LogError(ex, "queue {Qid}: command {Opcode:X2}h failed unexpectedly", _queuePair.Qid, cmd.Request.SqeBytes[0]);
        cmd.Request.Status = NvmeStatus.InternalError;
        CommandFinished(cmd);
    }

    private void CommandFinished(TcpCommand cmd)
    {
        // Only a read's data is still needed (until its C2HData is sent); give everything else back now.
        var request = cmd.Request;
        if (request.Direction != DataDirection.ControllerToHost || !request.Status.IsSuccess) ReleaseBuffer(cmd);
        // Connect set the queue's size: slots for it exist before the host learns it may use them.
        if (_queuePair.Entries * 2 > _slots.Length) GrowSlots(_queuePair.Entries * 2);
        if (cmd.Request.CompletionDeferred)
        {
            cmd.State = TcpCommandState.Deferred;
            if (Interlocked.CompareExchange(ref cmd.DeferState, TcpCommand.DeferParked, TcpCommand.DeferNone) != TcpCommand.DeferCompleted)
                return;
        }
        if (IsClosed)
        {
            cmd.State = TcpCommandState.Free;
            ReleaseBuffer(cmd);
            return;
        }
        QueueSend(SendKind.Response, cmd);
    }

    /// <summary>R2Ts leave the slot awaiting data (set by the receive loop); responses mark it Sending.</summary>
    private void QueueSend(SendKind kind, TcpCommand cmd)
    {
        if (kind == SendKind.Response) cmd.State = TcpCommandState.Sending;
        _outbox.Enqueue((kind, cmd.Request.Tag));
        WakeWriter();
    }

    private void FreeSlot(TcpCommand cmd)
    {
        ReleaseBuffer(cmd);
        cmd.State = TcpCommandState.Free;
        _freeSlots.Enqueue(cmd.Request.Tag);
    }
}
