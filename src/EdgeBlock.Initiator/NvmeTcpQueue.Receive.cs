using System.Net.Sockets;
using EdgeBlock.Nvme;
using EdgeBlock.Nvme.Tcp;

namespace EdgeBlock.Initiator;

public sealed partial class NvmeTcpQueue
{
    private const int InitialReceiveBufferBytes = 256 * 1024;
    /// <summary>Largest PDU we accept (a C2HData of 16 MiB plus headers): far above any MDTS we would use.</summary>
    private const int MaxPduBytes = 16 * 1024 * 1024 + 4096;

    private byte[] _recv = GC.AllocateUninitializedArray<byte>(InitialReceiveBufferBytes, pinned: true);

    /// <summary>
    /// The socket's only reader. Receives as much as is there, consumes every whole PDU, keeps the partial
    /// one at the head of the buffer (growing the buffer when one PDU is larger than it).
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
                while (true)
                {
                    int used = TryConsumePdu(_recv.AsSpan(consumed, filled - consumed), out needed);
                    if (used == 0) break;
                    consumed += used;
                }
                // Write what this batch produced (next commands, H2CData) ourselves: no thread hop to the send loop.
                // A full fence orders the flag against the outbox check (Enqueue checks them the other way round).
                Interlocked.Exchange(ref _receiveBatchActive, 0);
                if (HasPendingSend && TryAcquireWriter() && !await WriteQueuedAsync().ConfigureAwait(false)) return;
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
        ushort cid = DataPdu.CommandId(pdu);
        var slot = FindInFlight(cid) ?? throw ProtocolError($"C2HData for command {cid:X4}h, which is not outstanding");
        if (slot.Direction != TransferDirection.ControllerToHost) throw ProtocolError($"C2HData for command {cid:X4}h, which reads nothing");
        if (header.Pdo < headerBytes || header.Pdo > header.Plen) throw ProtocolError($"C2HData PDO {header.Pdo} outside {headerBytes}..{header.Plen}");
        if (header.HasDataDigest != DataDigest) throw ProtocolError($"C2HData DDGSTF {(header.HasDataDigest ? "set" : "clear")}, data digest {(DataDigest ? "on" : "off")}");
        int length = (int)header.Plen - header.Pdo - (DataDigest ? PduHeader.DigestSize : 0);
        uint offset = DataPdu.DataOffset(pdu), datal = DataPdu.DataLength(pdu);
        if (length <= 0 || datal != (uint)length) throw ProtocolError($"C2HData DATAL {datal} but the PDU carries {length} bytes");
        if (offset != (uint)slot.C2HReceived) throw ProtocolError($"C2HData DATAO {offset} for command {cid:X4}h, expected {slot.C2HReceived}");
        if (offset + datal > (uint)slot.Data.Length) throw ProtocolError($"C2HData ends at {offset + datal}, command {cid:X4}h reads {slot.Data.Length} bytes");

        var data = pdu.Slice(header.Pdo, length);
        data.CopyTo(slot.Data.Span[(int)offset..]);
        slot.C2HReceived += length;
        // A data digest error is not fatal: the command ends with Data Transfer Error, as the Linux host does.
        if (DataDigest && !Crc32C.Verify(data, pdu.Slice(header.Pdo + length, PduHeader.DigestSize))) slot.DataDigestFailed = true;
        Statistics.C2HDataPdusReceivedField++;

        bool last = (header.Flags & PduFlags.LastPdu) != 0, success = (header.Flags & PduFlags.Success) != 0;
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
