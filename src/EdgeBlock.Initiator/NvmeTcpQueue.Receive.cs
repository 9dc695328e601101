using System.Net.Sockets;
using System.Runtime.CompilerServices;
using EdgeBlock.Nvme;
using EdgeBlock.Nvme.Tcp;

namespace EdgeBlock.Initiator;

public sealed partial class NvmeTcpQueue
{
    private const int InitialReceiveBufferBytes = 256 * 1024;
    /// <summary>Largest PDU we accept (a C2HData of 16 MiB plus headers): far above any MDTS we would use.</summary>
    private const int MaxPduBytes = 16 * 1024 * 1024 + 4096;

    /// <summary>C2HData payloads with at least this much still to come are received straight into the command's buffer.</summary>
    private const int DirectReceiveMinBytes = 8192;

    private byte[] _recv = GC.AllocateUninitializedArray<byte>(InitialReceiveBufferBytes, pinned: true);
    /// <summary>Inside a receive batch, what the PDUs consumed so far produced is written after this many (half the queue depth).</summary>
    private int _writeEveryPdus = 16;
    private readonly byte[] _dataDigest = new byte[PduHeader.DigestSize];

    /// <summary>A C2HData PDU whose header has arrived and whose payload goes straight to the command's buffer.</summary>
    private readonly record struct DirectC2HData(PendingCommand Slot, ushort CommandId, int Offset, int Length, int Have, PduFlags Flags);

    /// <summary>
    /// The socket's only reader. Receives as much as is there, consumes every whole PDU, keeps the partial
    /// one at the head of the buffer (growing the buffer when one PDU is larger than it). The rest of a large
    /// C2HData payload is received directly into the command's buffer (one copy less, as the Linux host does).
    /// </summary>
    private async Task ReceiveLoopAsync()
    {
        int filled = 0;
        try
        {
            while (true)
            {
                int n = await _socket.ReceiveAsync(_recv.AsMemory(filled), SocketFlags.None).ConfigureAwait(false);
                if (n == 0) throw new IOException($"queue {Qid}: the controller closed the connection");
                filled += n;
                int consumed = 0, needed;
                Volatile.Write(ref _receiveBatchActive, 1);
                int sinceWrite = 0;
                while (true)
                {
                    int used = TryConsumePdu(_recv.AsSpan(consumed, filled - consumed), out needed);
                    if (used == 0) break;
                    consumed += used;
                    // Part way through a long batch, send what it produced so far: the controller starts on those
                    // commands while we finish the batch, instead of both ends working in lockstep, whole batch
                    // against whole batch (at QD32 that doubles the IOPS of one queue and costs both ends less).
                    if (++sinceWrite >= _writeEveryPdus && HasPendingSend)
                    {
                        sinceWrite = 0;
                        Interlocked.Exchange(ref _receiveBatchActive, 0);
                        if (TryAcquireWriter() && !await WriteQueuedAsync().ConfigureAwait(false)) return;
                        Volatile.Write(ref _receiveBatchActive, 1);
                    }
                }
                // Write what this batch produced (next commands, H2CData) ourselves: no thread hop to the send loop.
                // A full fence orders the flag against the outbox check (Enqueue checks them the other way round).
                Interlocked.Exchange(ref _receiveBatchActive, 0);
                if (HasPendingSend && TryAcquireWriter() && !await WriteQueuedAsync().ConfigureAwait(false)) return;
                if (TryBeginDirectC2HData(_recv.AsSpan(consumed, filled - consumed), out var direct))
                {
                    // Everything left in the buffer belongs to this PDU; the rest of it is read into the command's buffer.
                    var rest = direct.Slot.Data.Slice(direct.Offset + direct.Have, direct.Length - direct.Have);
                    await ReceiveIntoAsync(rest).ConfigureAwait(false);
                    if (DataDigest) await ReceiveIntoAsync(_dataDigest).ConfigureAwait(false);
                    consumed = filled;
                    needed = 0;
                    Volatile.Write(ref _receiveBatchActive, 1);
                    FinishDirectC2HData(direct);
                    Interlocked.Exchange(ref _receiveBatchActive, 0);
                    if (HasPendingSend && TryAcquireWriter() && !await WriteQueuedAsync().ConfigureAwait(false)) return;
                }
                if (consumed > 0)
                {
                    _recv.AsSpan(consumed, filled - consumed).CopyTo(_recv);
                    filled -= consumed;
                }
                if (needed > _recv.Length)
                {
                    var bigger = GC.AllocateUninitializedArray<byte>((needed + 4095) & ~4095, pinned: true);
                    _recv.AsSpan(0, filled).CopyTo(bigger);
                    _recv = bigger;
                }
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or OperationCanceledException)
        {
            Fail(new IOException($"queue {Qid}: connection to {RemoteEndPoint} lost: {ex.Message}", ex));
        }
        catch (Exception ex)
        {
            Fail(ex);
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ReceiveIntoAsync(Memory<byte> destination)
    {
        while (!destination.IsEmpty)
        {
            int n = await _socket.ReceiveAsync(destination, SocketFlags.None).ConfigureAwait(false);
            if (n == 0) throw new IOException($"queue {Qid}: the controller closed the connection");
            destination = destination[n..];
        }
    }

    /// <summary>
    /// When the buffer holds the header (up to PDO) of a C2HData PDU whose payload is mostly still to come, validates
    /// it as <see cref="HandleC2HData"/> would, copies the part of the payload already here and says where the rest goes.
    /// </summary>
    private bool TryBeginDirectC2HData(ReadOnlySpan<byte> buffer, out DirectC2HData direct)
    {
        direct = default;
        if (buffer.Length < PduHeader.Size) return false;
        var header = PduHeader.Read(buffer);
        if (header.Type != PduType.C2HData || header.Plen < (uint)buffer.Length + DirectReceiveMinBytes || buffer.Length < header.Pdo) return false;
        int headerBytes = ValidateCommonHeader(header);
        if (HeaderDigest && !Crc32C.Verify(buffer[..header.Hlen], buffer.Slice(header.Hlen, PduHeader.DigestSize)))
            throw ProtocolError($"header digest mismatch on a {header.Type} PDU");
        var slot = ValidateC2HData(buffer, header, headerBytes, out ushort cid, out int offset, out int length);
        int have = buffer.Length - header.Pdo; // less than length: at least DirectReceiveMinBytes of the PDU are missing
        buffer.Slice(header.Pdo, have).CopyTo(slot.Data.Span[offset..]);
        direct = new DirectC2HData(slot, cid, offset, length, have, header.Flags);
        return true;
    }

    private void FinishDirectC2HData(in DirectC2HData d)
    {
        // The queue may have failed (and the command with it) while the payload was arriving.
        if (d.Slot.State != PendingCommand.StateInFlight || d.Slot.CommandId != d.CommandId) return;
        bool digestOk = !DataDigest || Crc32C.Verify(d.Slot.Data.Span.Slice(d.Offset, d.Length), _dataDigest);
        FinishC2HData(d.Slot, d.CommandId, d.Length, digestOk, d.Flags);
    }

    private IOException ProtocolError(string what) => new($"queue {Qid}: NVMe/TCP protocol error from {RemoteEndPoint}: {what}");

    /// <summary>Returns the bytes of one whole PDU consumed, or 0 with the bytes needed before one can be.</summary>
    private int TryConsumePdu(ReadOnlySpan<byte> buffer, out int needed)
    {
        needed = PduHeader.Size;
        if (buffer.Length < PduHeader.Size) return 0;
        var header = PduHeader.Read(buffer);
        int headerBytes = ValidateCommonHeader(header);
        needed = (int)header.Plen;
        if (buffer.Length < needed) return 0;
        var pdu = buffer[..needed];
        if (header.Type != PduType.C2HTermReq && HeaderDigest && !Crc32C.Verify(pdu[..header.Hlen], pdu.Slice(header.Hlen, PduHeader.DigestSize)))
            throw ProtocolError($"header digest mismatch on a {header.Type} PDU");
        switch (header.Type)
        {
            case PduType.CapsuleResp: HandleCapsuleResp(pdu); break;
            case PduType.C2HData: HandleC2HData(pdu, header, headerBytes); break;
            case PduType.R2T: HandleR2T(pdu); break;
            case PduType.C2HTermReq: throw Terminated(Qid, pdu);
        }
        return needed;
    }

    /// <summary>Checks type, HLEN, HDGSTF and PLEN bounds; returns the header length including its digest.</summary>
    private int ValidateCommonHeader(in PduHeader header)
    {
        bool known = header.Type is PduType.CapsuleResp or PduType.C2HData or PduType.R2T or PduType.C2HTermReq;
        if (!known) throw ProtocolError($"unexpected PDU type {(byte)header.Type:X2}h");
        if (header.Hlen != PduHeader.ExpectedHlen(header.Type)) throw ProtocolError($"HLEN {header.Hlen} for {header.Type}");
        if (header.Type == PduType.C2HTermReq)
        {
            if (header.Plen is < PduHeader.TermReqLength or > PduHeader.TermReqLength + PduHeader.MaxTermReqData)
                throw ProtocolError($"C2HTermReq PLEN {header.Plen}");
            return PduHeader.TermReqLength;
        }
        if (header.HasHeaderDigest != HeaderDigest) throw ProtocolError($"HDGSTF {(header.HasHeaderDigest ? "set" : "clear")} on {header.Type}, header digest {(HeaderDigest ? "on" : "off")}");
        int headerBytes = header.Hlen + (HeaderDigest ? PduHeader.DigestSize : 0);
        if (header.Plen < headerBytes || header.Plen > MaxPduBytes) throw ProtocolError($"PLEN {header.Plen} for {header.Type}");
        if (header.Type != PduType.C2HData && header.Plen != headerBytes) throw ProtocolError($"{header.Type} PLEN {header.Plen}, expected {headerBytes}");
        return headerBytes;
    }

    private void HandleCapsuleResp(ReadOnlySpan<byte> pdu)
    {
        var cqe = pdu.Slice(PduHeader.Size, CompletionQueueEntry.Size);
        ushort cid = CompletionQueueEntry.CommandId(cqe);
        var slot = FindInFlight(cid) ?? throw ProtocolError($"CapsuleResp for command {cid:X4}h, which is not outstanding");
        var status = CompletionQueueEntry.Status(cqe);
        if (status.IsSuccess && slot.Direction == TransferDirection.ControllerToHost && slot.C2HReceived != slot.Data.Length)
            throw ProtocolError($"command {cid:X4}h completed successfully after {slot.C2HReceived} of {slot.Data.Length} data bytes");
        if (status.IsSuccess && slot.DataDigestFailed) status = NvmeStatus.DataTransferError;
        Statistics.ResponsesReceivedField++;
        slot.TryComplete(new NvmeCompletion(status, CompletionQueueEntry.Result(cqe), CompletionQueueEntry.SqHead(cqe), CompletionQueueEntry.SqId(cqe), cid));
    }

    private void HandleC2HData(ReadOnlySpan<byte> pdu, in PduHeader header, int headerBytes)
    {
        var slot = ValidateC2HData(pdu, header, headerBytes, out ushort cid, out int offset, out int length);
        var data = pdu.Slice(header.Pdo, length);
        data.CopyTo(slot.Data.Span[offset..]);
        bool digestOk = !DataDigest || Crc32C.Verify(data, pdu.Slice(header.Pdo + length, PduHeader.DigestSize));
        FinishC2HData(slot, cid, length, digestOk, header.Flags);
    }

    /// <summary>Checks a C2HData header (the PDU's first PDO bytes) against the command it names.</summary>
    private PendingCommand ValidateC2HData(ReadOnlySpan<byte> pdu, in PduHeader header, int headerBytes, out ushort cid, out int offset, out int length)
    {
        cid = DataPdu.CommandId(pdu);
        var slot = FindInFlight(cid) ?? throw ProtocolError($"C2HData for command {cid:X4}h, which is not outstanding");
        if (slot.Direction != TransferDirection.ControllerToHost) throw ProtocolError($"C2HData for command {cid:X4}h, which reads nothing");
        if (header.Pdo < headerBytes || header.Pdo > header.Plen) throw ProtocolError($"C2HData PDO {header.Pdo} outside {headerBytes}..{header.Plen}");
        if (header.HasDataDigest != DataDigest) throw ProtocolError($"C2HData DDGSTF {(header.HasDataDigest ? "set" : "clear")}, data digest {(DataDigest ? "on" : "off")}");
        length = (int)header.Plen - header.Pdo - (DataDigest ? PduHeader.DigestSize : 0);
        uint datao = DataPdu.DataOffset(pdu), datal = DataPdu.DataLength(pdu);
        if (length <= 0 || datal != (uint)length) throw ProtocolError($"C2HData DATAL {datal} but the PDU carries {length} bytes");
        if (datao != (uint)slot.C2HReceived) throw ProtocolError($"C2HData DATAO {datao} for command {cid:X4}h, expected {slot.C2HReceived}");
        if (datao + datal > (uint)slot.Data.Length) throw ProtocolError($"C2HData ends at {datao + datal}, command {cid:X4}h reads {slot.Data.Length} bytes");
        offset = (int)datao;
        return slot;
    }

    /// <summary>The payload is in the command's buffer: count it, and complete the command on SUCCESS.</summary>
    private void FinishC2HData(PendingCommand slot, ushort cid, int length, bool digestOk, PduFlags flags)
    {
        slot.C2HReceived += length;
        // A data digest error is not fatal: the command ends with Data Transfer Error, as the Linux host does.
        if (!digestOk) slot.DataDigestFailed = true;
        Statistics.C2HDataPdusReceivedField++;

        bool last = (flags & PduFlags.LastPdu) != 0, success = (flags & PduFlags.Success) != 0;
        if (!success) return;
        if (!last) throw ProtocolError("C2HData with SUCCESS but without LAST_PDU");
        if (slot.C2HReceived != slot.Data.Length) throw ProtocolError($"C2HData SUCCESS after {slot.C2HReceived} of {slot.Data.Length} bytes");
        // SUCCESS stands in for the CapsuleResp: there is no CQE, so no SQHD and no result.
        Statistics.SuccessFlagCompletionsField++;
        var status = slot.DataDigestFailed ? NvmeStatus.DataTransferError : NvmeStatus.Success;
        slot.TryComplete(new NvmeCompletion(status, 0, 0, Qid, cid));
    }

    private void HandleR2T(ReadOnlySpan<byte> pdu)
    {
        ushort cid = DataPdu.CommandId(pdu);
        var slot = FindInFlight(cid) ?? throw ProtocolError($"R2T for command {cid:X4}h, which is not outstanding");
        if (slot.Direction != TransferDirection.HostToController || slot.InCapsule)
            throw ProtocolError($"R2T for command {cid:X4}h, which has no data waiting for one");
        uint offset = DataPdu.DataOffset(pdu), length = DataPdu.DataLength(pdu);
        if (length == 0 || offset + (ulong)length > (ulong)slot.Data.Length)
            throw ProtocolError($"R2T asks for {length} bytes at {offset}, command {cid:X4}h writes {slot.Data.Length}");
        Statistics.R2TsReceivedField++;
        Enqueue(new SendItem(SendKind.H2CData, slot.Index, cid, DataPdu.TransferTag(pdu), offset, length));
    }
}
