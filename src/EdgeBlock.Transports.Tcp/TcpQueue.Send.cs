using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using EdgeBlock.Interop;
using EdgeBlock.Nvme;
using EdgeBlock.Nvme.Tcp;
using EdgeBlock.Storage;
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

    // ---- gathered writes ----
    // PDU headers (and small payloads) are formatted into _send; C2HData payloads of GatherMinBytes or more
    // stay in their command's buffer and go out from there: one sendmsg with an iovec per piece, so the
    // payload is copied once (by the kernel) instead of twice. The slots stay busy until the send is done.
    /// <summary>Smaller payloads are copied into the send buffer: an iovec costs about as much as copying a few KiB.</summary>
    internal const int GatherMinBytes = 4096;
    /// <summary>Pieces per send; a flush happens earlier when they run out.</summary>
    private const int MaxIov = 256;
    private readonly Native.IoVec[] _iov = GC.AllocateArray<Native.IoVec>(MaxIov, pinned: true);
    /// <summary>The same pieces as Memory, for the fallback when the socket's send buffer is full.</summary>
    private readonly ReadOnlyMemory<byte>[] _iovSource = new ReadOnlyMemory<byte>[MaxIov];
    private int _iovCount;
    /// <summary>Start of the bytes in _send that are not in an iovec yet.</summary>
    private int _runStart;
    /// <summary>Slots whose payload is referenced by the pending send; freed once it is on the wire.</summary>
    private readonly int[] _sentSlots = new int[MaxIov];
    private int _sentCount;

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
        if (Volatile.Read(ref _receiveBatchActive) != 0) return;
        // A device completing a batch on its own thread (io_uring): write once at the end of the batch, on that
        // thread, instead of waking the send loop for each completion. Already deferred: that run writes this too.
        if (Interlocked.CompareExchange(ref _afterBatchQueued, 1, 0) != 0) return;
        if (CompletionBatch.TryDefer(this)) return;
        Volatile.Write(ref _afterBatchQueued, 0);
        _sendSignal.Set();
    }

    /// <summary>1 while this queue waits for the end of a device's completion batch to write.</summary>
    private int _afterBatchQueued;

    /// <summary>End of a device's completion batch: write what its completions queued, here (sendmsg does not block).</summary>
    void ICompletionBatchWork.RunAfterBatch()
    {
        Interlocked.Exchange(ref _afterBatchQueued, 0);
        if (IsClosed || !HasPendingSend || !TryAcquireWriter()) return; // the writer at work re-checks the queue when done
        // Completes here unless the socket is full; then it goes on by itself like the send loop's own writes.
        _ = WriteQueuedAsync();
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
                    var cmd = _slots[item.Slot]!;
                    if (_sendFilled + SendBufferBytesFor(cmd, item.Kind) > _send.Length || _iovCount + 3 > MaxIov)
                        await FlushSendBufferAsync().ConfigureAwait(false);
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

    /// <summary>Puts everything formatted so far on the wire, then frees the slots whose payloads it referenced.</summary>
    private async ValueTask FlushSendBufferAsync()
    {
        CloseRun();
        int index = 0;
        while (index < _iovCount)
        {
            if (Native.IsGatheredSendSupported && TrySendGathered(ref index)) continue;
            // The socket's send buffer is full: .NET waits for room (epoll) and sends this piece, then sendmsg goes on.
            int sent = await _socket.SendAsync(_iovSource[index], SocketFlags.None, _closed.Token).ConfigureAwait(false);
            Advance(ref index, sent);
        }
        Array.Clear(_iovSource, 0, _iovCount);
        _iovCount = 0;
        _sendFilled = 0;
        _runStart = 0;
        for (int i = 0; i < _sentCount; i++) FreeSlot(_slots[_sentSlots[i]]!);
        _sentCount = 0;
    }

    /// <summary>One sendmsg of the remaining pieces. False: nothing could be sent without waiting.</summary>
    private unsafe bool TrySendGathered(ref int index)
    {
        while (true)
        {
            nint sent = Native.SendGathered(_socket.SafeHandle, (Native.IoVec*)Unsafe.AsPointer(ref _iov[index]), _iovCount - index, out int errno);
            if (sent > 0)
            {
                Advance(ref index, sent);
                return true;
            }
            if (sent == 0 || errno == Native.EAGAIN) return false;
            if (errno != Native.EINTR) throw new SocketException((int)SocketError.ConnectionReset);
        }
    }

    /// <summary>Skips the bytes sent: whole pieces, then the front of a partly sent one.</summary>
    private unsafe void Advance(ref int index, nint sent)
    {
        while (sent > 0)
        {
            ref var iov = ref _iov[index];
            if ((nuint)sent >= iov.Length)
            {
                sent -= (nint)iov.Length;
                index++;
                continue;
            }
            iov.Base = (byte*)iov.Base + sent;
            iov.Length -= (nuint)sent;
            _iovSource[index] = _iovSource[index][(int)sent..];
            return;
        }
    }

    /// <summary>Ends the current run of bytes in _send as one piece.</summary>
    private unsafe void CloseRun()
    {
        int length = _sendFilled - _runStart;
        if (length == 0) return;
        AddPiece((byte*)Unsafe.AsPointer(ref _send[_runStart]), _send.AsMemory(_runStart, length));
        _runStart = _sendFilled;
    }

    private unsafe void AddPiece(byte* pointer, ReadOnlyMemory<byte> memory)
    {
        _iov[_iovCount] = new Native.IoVec { Base = pointer, Length = (nuint)memory.Length };
        _iovSource[_iovCount] = memory;
        _iovCount++;
    }

    /// <summary>The payload's address when it can go out from the command's own (native, fixed) buffer.</summary>
    private static unsafe bool TryGetGatherable(NvmeRequest request, int length, out byte* pointer)
    {
        pointer = null;
        if (!Native.IsGatheredSendSupported || length < GatherMinBytes || length == 0) return false;
        if (!MemoryMarshal.TryGetMemoryManager<byte, AlignedBuffer>(request.Data, out var buffer, out int start, out int available) || available < length)
            return false;
        pointer = buffer!.Pointer + start;
        return true;
    }

    private int HeaderBytes(int hlen) => hlen + (_headerDigest ? PduHeader.DigestSize : 0);

    /// <summary>Room a PDU needs in _send at most: payloads that are gathered take none.</summary>
    private unsafe int SendBufferBytesFor(TcpCommand cmd, SendKind kind) =>
        kind == SendKind.R2T
            ? HeaderBytes(PduHeader.R2TLength)
            : HeaderBytes(PduHeader.CapsuleRespLength) + PduHeader.DataOffset(PduHeader.DataLength, _headerDigest, _hostPda)
              + (!SendsData(cmd.Request) || TryGetGatherable(cmd.Request, cmd.Request.DataLength, out _) ? 0 : cmd.Request.DataLength) + PduHeader.DigestSize;

    /// <summary>A successful read's data goes to the host in a C2HData PDU.</summary>
    private static bool SendsData(NvmeRequest request) =>
        request.Direction == DataDirection.ControllerToHost && request.Status.IsSuccess && request.DataLength > 0;

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
        bool sendData = SendsData(request);
        // SUCCESS may replace the response only when the host does not need SQHD (SQ flow control disabled).
        bool elideResponse = sendData && _queuePair.SqFlowControlDisabled;
        bool gathered = sendData && FormatC2HData(cmd, elideResponse);
        if (!elideResponse) FormatResponse(request);

        if (request.DisconnectAfterCompletion) _disconnectRequested = true;
        // A gathered payload is still to be sent from the slot's buffer: the slot is freed after the send.
        if (gathered) _sentSlots[_sentCount++] = cmd.Request.Tag;
        else FreeSlot(cmd);
    }

    /// <summary>Formats a C2HData PDU; true when its payload is gathered from the command's buffer instead of copied.</summary>
    private unsafe bool FormatC2HData(TcpCommand cmd, bool success)
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
        if (TryGetGatherable(request, length, out byte* payload))
        {
            _sendFilled += pdo;
            CloseRun();
            AddPiece(payload, request.Data[..length]);
            if (_dataDigest)
            {
                Crc32C.Write(_send.AsSpan(_sendFilled, PduHeader.DigestSize), request.Data.Span[..length]);
                _sendFilled += PduHeader.DigestSize;
            }
            return true;
        }
        var data = pdu.Slice(pdo, length);
        request.Data.Span[..length].CopyTo(data);
        if (_dataDigest) Crc32C.Write(pdu[(pdo + length)..], data);
        _sendFilled += plen;
        return false;
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
