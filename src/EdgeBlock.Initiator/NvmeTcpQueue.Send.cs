using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using EdgeBlock.Nvme;
using EdgeBlock.Nvme.Tcp;

namespace EdgeBlock.Initiator;

public sealed partial class NvmeTcpQueue
{
    private const int SendBufferBytes = 256 * 1024;

    private enum SendKind : byte { Capsule, H2CData }

    /// <summary>Work for the writer: a command capsule, or the data an R2T asked for.</summary>
    private readonly record struct SendItem(SendKind Kind, int Slot, ushort CommandId, ushort TransferTag, uint Offset, uint Length);

    private readonly ConcurrentQueue<SendItem> _outbox = new();
    private readonly AsyncSignal _sendSignal = new();
    private readonly byte[] _send = GC.AllocateUninitializedArray<byte>(SendBufferBytes, pinned: true);
    private int _sendFilled;

    /// <summary>1 while the receive loop or the send loop owns the socket's send side.</summary>
    private int _writer;
    /// <summary>1 while the receive loop works through a batch of PDUs; it writes what they produce afterwards.</summary>
    private int _receiveBatchActive;

    private bool HasPendingSend => !_outbox.IsEmpty;

    private bool TryAcquireWriter() => Interlocked.CompareExchange(ref _writer, 1, 0) == 0;

    /// <summary>
    /// Queues a PDU. Inside a receive batch (completions run inline and submit the next commands, R2Ts ask for
    /// data) the receive loop writes it right after the batch; from other threads the send loop is woken.
    /// </summary>
    private void Enqueue(in SendItem item)
    {
        _outbox.Enqueue(item);
        if (Volatile.Read(ref _receiveBatchActive) == 0) _sendSignal.Set();
    }

    /// <summary>Waits for work queued from other threads and writes it when the receive loop is not already doing so.</summary>
    private async Task SendLoopAsync()
    {
        while (true)
        {
            await _sendSignal.WaitAsync().ConfigureAwait(false);
            if (Failure != null) return;
            if (TryAcquireWriter() && !await WriteQueuedAsync().ConfigureAwait(false)) return;
        }
    }

    /// <summary>
    /// The writer's work, with the writer role held: format everything queued into one buffer and send it with
    /// as few system calls as possible, release the role and re-check so nothing queued meanwhile is stranded.
    /// False when the queue failed.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> WriteQueuedAsync()
    {
        try
        {
            do
            {
                while (_outbox.TryDequeue(out var item))
                {
                    var slot = _slots[item.Slot];
                    // The command may have completed (or the queue failed) since this was queued.
                    if (slot.State != PendingCommand.StateInFlight || slot.CommandId != item.CommandId) continue;
                    if (item.Kind == SendKind.Capsule)
                    {
                        if (_send.Length - _sendFilled < CapsuleBytes(slot)) await FlushAsync().ConfigureAwait(false);
                        FormatCapsule(slot);
                    }
                    else
                    {
                        await FormatH2CDataAsync(slot, item).ConfigureAwait(false);
                    }
                }
                await FlushAsync().ConfigureAwait(false);
                if (Failure != null) return false;
                // A full fence: the release must be visible before the outbox is checked again.
                Interlocked.Exchange(ref _writer, 0);
            }
            while (HasPendingSend && TryAcquireWriter());
            return true;
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or OperationCanceledException)
        {
            Fail(new IOException($"queue {Qid}: connection to {RemoteEndPoint} lost while sending: {ex.Message}", ex));
        }
        catch (Exception ex)
        {
            Fail(ex);
        }
        return false;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask FlushAsync()
    {
        int sent = 0;
        while (sent < _sendFilled)
            sent += await _socket.SendAsync(_send.AsMemory(sent, _sendFilled - sent), SocketFlags.None).ConfigureAwait(false);
        _sendFilled = 0;
    }

    private int HeaderBytes(int hlen) => hlen + (HeaderDigest ? PduHeader.DigestSize : 0);

    private int CapsuleInlineBytes(PendingCommand slot) => slot.InCapsule ? slot.Data.Length : 0;

    private int CapsuleBytes(PendingCommand slot)
    {
        int data = CapsuleInlineBytes(slot);
        return data == 0
            ? HeaderBytes(PduHeader.CapsuleCmdLength)
            : PduHeader.DataOffset(PduHeader.CapsuleCmdLength, HeaderDigest, ControllerPda) + data + (DataDigest ? PduHeader.DigestSize : 0);
    }

    private void FormatCapsule(PendingCommand slot)
    {
        int data = CapsuleInlineBytes(slot);
        int plen = CapsuleBytes(slot);
        int pdo = data == 0 ? 0 : PduHeader.DataOffset(PduHeader.CapsuleCmdLength, HeaderDigest, ControllerPda);
        var flags = (HeaderDigest ? PduFlags.Hdgstf : 0) | (data > 0 && DataDigest ? PduFlags.Ddgstf : 0);
        var pdu = _send.AsSpan(_sendFilled, plen);
        new PduHeader(PduType.CapsuleCmd, flags, PduHeader.CapsuleCmdLength, (byte)pdo, (uint)plen).Write(pdu);
        slot.Sqe.CopyTo(pdu[PduHeader.Size..]);
        AppendHeaderDigest(pdu, PduHeader.CapsuleCmdLength);
        if (data > 0)
        {
            pdu[HeaderBytes(PduHeader.CapsuleCmdLength)..pdo].Clear();
            var payload = pdu.Slice(pdo, data);
            slot.Data.Span.CopyTo(payload);
            if (DataDigest) Crc32C.Write(pdu[(pdo + data)..], payload);
            Statistics.InCapsuleWritesField++;
        }
        _sendFilled += plen;
        Statistics.CapsulesSentField++;
    }

    /// <summary>Answers an R2T: H2CData PDUs of at most MAXH2CDATA bytes each, LAST_PDU on the one that ends the R2T.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask FormatH2CDataAsync(PendingCommand slot, SendItem item)
    {
        int pdo = PduHeader.DataOffset(PduHeader.DataLength, HeaderDigest, ControllerPda);
        int trailer = DataDigest ? PduHeader.DigestSize : 0;
        uint offset = item.Offset, end = item.Offset + item.Length;
        while (offset < end)
        {
            int want = (int)Math.Min(end - offset, (uint)MaxH2CDataBytes);
            if (_send.Length - _sendFilled - pdo - trailer < want) await FlushAsync().ConfigureAwait(false);
            if (slot.State != PendingCommand.StateInFlight || slot.CommandId != item.CommandId) return;
            int chunk = Math.Min(want, _send.Length - pdo - trailer - _sendFilled);
            bool last = offset + (uint)chunk == end;
            int plen = pdo + chunk + trailer;
            var pdu = _send.AsSpan(_sendFilled, plen);
            var flags = (last ? PduFlags.LastPdu : 0) | (HeaderDigest ? PduFlags.Hdgstf : 0) | (DataDigest ? PduFlags.Ddgstf : 0);
            DataPdu.WriteHeader(pdu, PduType.H2CData, flags, (byte)pdo, (uint)plen, item.CommandId, item.TransferTag, offset, (uint)chunk);
            AppendHeaderDigest(pdu, PduHeader.DataLength);
            pdu[HeaderBytes(PduHeader.DataLength)..pdo].Clear();
            var payload = pdu.Slice(pdo, chunk);
            slot.Data.Span.Slice((int)offset, chunk).CopyTo(payload);
            if (DataDigest) Crc32C.Write(pdu[(pdo + chunk)..], payload);
            _sendFilled += plen;
            offset += (uint)chunk;
            Statistics.H2CDataPdusSentField++;
        }
    }

    private void AppendHeaderDigest(Span<byte> pdu, int hlen)
    {
        if (HeaderDigest) Crc32C.Write(pdu.Slice(hlen, PduHeader.DigestSize), pdu[..hlen]);
    }
}
