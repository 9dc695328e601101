using System.Net.Sockets;
using EdgeBlock.Nvme;
using EdgeBlock.Nvme.Tcp;
using EdgeBlock.Target;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Transports.Tcp;

internal sealed partial class TcpQueue
{
    private readonly byte[] _icResp = new byte[PduHeader.IcRespLength];
    private volatile bool _icRespPending;
    private int _sendFilled;
    private byte[]? _termReq;
    private bool _disconnectRequested;

    private readonly TaskCompletionSource _termReqSent = new(TaskCreationOptions.RunContinuationsAsynchronously);
    /// <summary>1 while the receive loop or the send loop owns the socket's send side.</summary>
    private int _writer;
    /// <summary>True while the receive loop works through a batch of PDUs; it writes what they produce afterwards.</summary>
    private int _receiveBatchActive;

    private void QueueIcResp()
    {
        _icRespPending = true;
        _sendSignal.Set();
    }

    private bool HasPendingSend => !_outbox.IsEmpty || _icRespPending || _termReq != null;

    private bool TryAcquireWriter() => Interlocked.CompareExchange(ref _writer, 1, 0) == 0;

    /// <summary>
    /// Wakes the send loop for work queued outside the receive loop's batch (device completions on
    /// other threads, AERs). Inside a batch the receive loop writes itself, saving a thread hop per batch.
    /// </summary>
    private void WakeWriter()
    {
        if (Volatile.Read(ref _receiveBatchActive) == 0) _sendSignal.Set();
    }

    /// <summary>Waits for work queued from other threads and writes it when the receive loop is not already doing so.</summary>
    private async Task SendLoopAsync()
    {
        while (!IsClosed)
        {
            await _sendSignal.WaitAsync().ConfigureAwait(false);
            if (IsClosed) return;
            if (TryAcquireWriter() && !await WriteQueuedAsync().ConfigureAwait(false)) return;
        }
    }

    /// <summary>
    /// The writer's work, with the writer role held: drain everything queued into one buffer and send it
    /// with as few system calls as possible (batching is what matters most for NVMe/TCP CPU cost). Releases
    /// the role and re-checks, so nothing queued meanwhile is stranded. False: the queue stops sending.
    /// </summary>
    private async ValueTask<bool> WriteQueuedAsync()
    {
        try
        {
            do
            {
                if (_icRespPending)
                {
                    _icRespPending = false;
                    _icResp.CopyTo(_send.AsSpan(_sendFilled));
                    _sendFilled += _icResp.Length;
                }
                while (_outbox.TryDequeue(out var item))
                {
                    var cmd = _slots[item.Slot];
                    if (_sendFilled + MaxPduBytes(cmd, item.Kind) > _send.Length) await FlushSendBufferAsync().ConfigureAwait(false);
                    if (item.Kind == SendKind.R2T) FormatR2T(cmd);
                    else FormatCompletion(cmd);
                }
                // A TermReq is the last PDU on the wire: everything queued before the fatal error goes first.
                if (_termReq is { } termReq)
                {
                    termReq.CopyTo(_send.AsSpan(_sendFilled));
                    _sendFilled += termReq.Length;
                    await FlushSendBufferAsync().ConfigureAwait(false);
                    _termReqSent.TrySetResult();
                    return false; // keep the writer role: nothing may follow
                }
                await FlushSendBufferAsync().ConfigureAwait(false);
                if (_disconnectRequested)
                {
                    Close("host sent Disconnect");
                    return false;
                }
                Volatile.Write(ref _writer, 0);
            }
            while (HasPendingSend && !IsClosed && TryAcquireWriter());
            return true;
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or OperationCanceledException)
        {
            Close("connection closed");
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "queue {Qid} from {Remote}: sending failed", _queuePair.Qid, RemoteEndpoint);
            Close("sending failed");
        }
        _termReqSent.TrySetResult();
        return false;
    }

    private async ValueTask FlushSendBufferAsync()
    {
        int sent = 0;
        while (sent < _sendFilled)
            sent += await _socket.SendAsync(_send.AsMemory(sent, _sendFilled - sent), SocketFlags.None, _closed.Token).ConfigureAwait(false);
        _sendFilled = 0;
    }

    private int HeaderBytes(int hlen) => hlen + (_headerDigest ? PduHeader.DigestSize : 0);

    private int MaxPduBytes(TcpCommand cmd, SendKind kind) =>
        kind == SendKind.R2T
            ? HeaderBytes(PduHeader.R2TLength)
            : HeaderBytes(PduHeader.CapsuleRespLength) + PduHeader.DataOffset(PduHeader.DataLength, _headerDigest, _hostPda) + cmd.Request.DataLength + PduHeader.DigestSize;

    private void FormatR2T(TcpCommand cmd)
    {
        var pdu = _send.AsSpan(_sendFilled);
        int hlen = PduHeader.R2TLength;
        var flags = _headerDigest ? PduFlags.Hdgstf : PduFlags.None;
        DataPdu.WriteHeader(pdu, PduType.R2T, flags, 0, (uint)HeaderBytes(hlen), cmd.Request.CommandId, cmd.Tag, 0, (uint)cmd.Request.DataLength);
        AppendHeaderDigest(pdu, hlen);
        _sendFilled += HeaderBytes(hlen);
    }

    /// <summary>C2HData (for successful reads) then the response capsule, unless the host allowed eliding it.</summary>
    private void FormatCompletion(TcpCommand cmd)
    {
        var request = cmd.Request;
        bool sendData = request.Direction == DataDirection.ControllerToHost && request.Status.IsSuccess && request.DataLength > 0;
        // SUCCESS may replace the response only when the host does not need SQHD (SQ flow control disabled).
        bool elideResponse = sendData && _queuePair.SqFlowControlDisabled;
        if (sendData) FormatC2HData(cmd, elideResponse);
        if (!elideResponse) FormatResponse(request);

        if (request.DisconnectAfterCompletion) _disconnectRequested = true;
        FreeSlot(cmd);
    }

    private void FormatC2HData(TcpCommand cmd, bool success)
    {
        var request = cmd.Request;
        var pdu = _send.AsSpan(_sendFilled);
        int length = request.DataLength;
        int pdo = PduHeader.DataOffset(PduHeader.DataLength, _headerDigest, _hostPda);
        int plen = pdo + length + (_dataDigest ? PduHeader.DigestSize : 0);
        var flags = PduFlags.LastPdu | (success ? PduFlags.Success : 0)
            | (_headerDigest ? PduFlags.Hdgstf : 0) | (_dataDigest ? PduFlags.Ddgstf : 0);
        DataPdu.WriteHeader(pdu, PduType.C2HData, flags, (byte)pdo, (uint)plen, request.CommandId, 0, 0, (uint)length);
        AppendHeaderDigest(pdu, PduHeader.DataLength);
        pdu[HeaderBytes(PduHeader.DataLength)..pdo].Clear();
        var data = pdu.Slice(pdo, length);
        request.Data.Span[..length].CopyTo(data);
        if (_dataDigest) Crc32C.Write(pdu[(pdo + length)..], data);
        _sendFilled += plen;
    }

    private void FormatResponse(NvmeRequest request)
    {
        var pdu = _send.AsSpan(_sendFilled);
        int hlen = PduHeader.CapsuleRespLength;
        new PduHeader(PduType.CapsuleResp, _headerDigest ? PduFlags.Hdgstf : PduFlags.None, (byte)hlen, 0, (uint)HeaderBytes(hlen)).Write(pdu);
        _queuePair.WriteCompletion(request, pdu.Slice(PduHeader.Size, CompletionQueueEntry.Size));
        AppendHeaderDigest(pdu, hlen);
        _sendFilled += HeaderBytes(hlen);
    }

    private void AppendHeaderDigest(Span<byte> pdu, int hlen)
    {
        if (_headerDigest) Crc32C.Write(pdu.Slice(hlen, PduHeader.DigestSize), pdu[..hlen]);
    }

    /// <summary>
    /// A fatal protocol error: the send loop sends a C2HTermReq after what is already queued and stops;
    /// the receive loop returns and the queue closes. Other connections are untouched.
    /// </summary>
    private void QueueTermReq(ProtocolError error, ReadOnlySpan<byte> offendingHeader)
    {
        _logger.LogWarning("queue {Qid} from {Remote}: fatal protocol error, sending C2HTermReq (FES {Fes}, FEI {Fei}): {Reason}",
            _queuePair.Qid, RemoteEndpoint, error.Fes, error.Fei, error.Reason);
        var pdu = new byte[PduHeader.TermReqLength + PduHeader.MaxTermReqData];
        int plen = TermReq.Write(pdu, PduType.C2HTermReq, error.Fes, error.Fei, offendingHeader);
        _termReq = pdu[..plen];
        _sendSignal.Set();
    }

    /// <summary>Gives whoever holds the writer role a moment to put the C2HTermReq on the wire before the socket closes.</summary>
    private async Task WaitForTermReqAsync()
    {
        if (TryAcquireWriter()) await WriteQueuedAsync().ConfigureAwait(false);
        await Task.WhenAny(_termReqSent.Task, Task.Delay(TimeSpan.FromSeconds(1))).ConfigureAwait(false);
    }
}
