using System.Diagnostics;
using System.Net.Sockets;
using EdgeBlock.Interop;
using EdgeBlock.Nvme;
using EdgeBlock.Nvme.Tcp;
using EdgeBlock.Storage;
using EdgeBlock.Target;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Transports.Tcp;

internal sealed partial class TcpQueue
{
    /// <summary>Why a PDU was refused: the C2HTermReq to send, with the offending header.</summary>
    private readonly record struct ProtocolError(TermReqFes Fes, uint Fei, string Reason);

    private async Task ReceiveLoopAsync()
    {
        int filled = 0;
        var token = _closed.Token;
        while (true)
        {
            int n = _busyPollTicks > 0 ? PollReceive(filled) : -1;
            if (n < 0) n = await _socket.ReceiveAsync(_recv.Memory[filled..], SocketFlags.None, token).ConfigureAwait(false);
            if (n == 0) return;
            filled += n;
            do
            {
                filled = ConsumeReceived(filled);
                if (filled < 0) return;
                // Write what this batch produced ourselves; a full fence orders the flag against the queue check.
                Interlocked.Exchange(ref _receiveBatchActive, 0);
                if (HasPendingSend && TryAcquireWriter() && !await WriteQueuedAsync().ConfigureAwait(false)) return;
            }
            // Stopped at in-capsule data without a buffer: read nothing more (back-pressure) until buffers come back.
            while (_receiveBlocked && await WaitForInCapsuleBufferAsync().ConfigureAwait(false));
            if (IsClosed) return;
        }
    }

    /// <summary>
    /// Busy polling (off unless the transport is given a window): after a batch, reads the socket without waiting until
    /// bytes arrive or the window ends, so a host that sends its next command within the window (a QD1 workload) does
    /// not pay for a sleep in epoll and the wake-up. The bytes read, 0 at end of stream, or -1 when the window passed
    /// (or the socket has an error the asynchronous receive will report). It spins on this thread: with inline socket
    /// completions that is the socket engine's thread, so other connections wait up to one window; hence opt-in.
    /// </summary>
    private unsafe int PollReceive(int filled)
    {
        long deadline = Stopwatch.GetTimestamp() + _busyPollTicks;
        byte* space = _recv.Pointer + filled;
        int length = _recv.Length - filled;
        do
        {
            nint n = Native.ReceiveNow(_socket.SafeHandle, space, length, out int errno);
            if (n > 0) PolledReceives++;
            if (n >= 0) return (int)n;
            if (errno is not (Native.EAGAIN or Native.EINTR)) return -1;
            Thread.SpinWait(8);
        }
        while (Stopwatch.GetTimestamp() < deadline && !IsClosed);
        return -1;
    }

    /// <summary>Receives that busy polling served (the receive loop's thread writes it); for tests.</summary>
    internal long PolledReceives;

    /// <summary>Room left in the receive buffer after <paramref name="filled"/> bytes.</summary>
    internal Memory<byte> ReceiveSpace(int filled) => _recv.Memory[filled..];

    /// <summary>
    /// Handles the whole PDUs among the first <paramref name="filled"/> bytes of the receive buffer and keeps
    /// the partial one at its head (Garnet's NetworkHandler does the same). Returns how many bytes remain,
    /// or -1 when the connection ends (host TermReq, or a fatal error whose C2HTermReq is queued).
    /// What the PDUs queue is written by the caller afterwards (the batch flag stays set until then).
    /// The socket-free half of the receive loop: the fuzz harness (tests/fuzz) drives it directly.
    /// </summary>
    internal int ConsumeReceived(int filled)
    {
        Volatile.Write(ref _receiveBatchActive, 1);
        Span<byte> recv = _recv.Span;
        int consumed = 0;
        while (true)
        {
            var status = TryConsumePdu(recv.Slice(consumed, filled - consumed), out int used, out var error);
            if (status is PduParse.NeedMore or PduParse.NeedBuffer) break;
            if (status == PduParse.Fatal)
            {
                QueueTermReq(error, recv.Slice(consumed, Math.Min(filled - consumed, PduHeader.MaxTermReqData)));
                return -1;
            }
            if (status == PduParse.Closed) return -1;
            consumed += used;
        }
        if (consumed > 0)
        {
            recv.Slice(consumed, filled - consumed).CopyTo(recv);
            filled -= consumed;
        }
        // The common header check bounds PLEN by the large buffer, so a full large buffer is always a whole PDU.
        if (filled == recv.Length && !_receiveBlocked && recv.Length == RecvBufferBytes) throw new InvalidOperationException("receive buffer full without a whole PDU");
        if (!_receiveBlocked) FitReceiveBuffer(filled);
        return filled;
    }

    /// <summary>NeedBuffer: a capsule's in-capsule data has no buffer under the budget yet; nothing was consumed.</summary>
    private enum PduParse { NeedMore, Consumed, Fatal, Closed, NeedBuffer }

    /// <summary>Validates the common header before the whole PDU is in, so a bad PLEN cannot make us wait forever.</summary>
    private PduParse TryConsumePdu(ReadOnlySpan<byte> buffer, out int used, out ProtocolError error)
    {
        used = 0;
        error = default;
        if (buffer.Length < PduHeader.Size) return PduParse.NeedMore;
        var header = PduHeader.Read(buffer);
        if (!ValidateCommonHeader(header, out error)) return PduParse.Fatal;
        if (buffer.Length < header.Plen) return PduParse.NeedMore;
        used = (int)header.Plen;
        var pdu = buffer[..used];
        if (CarriesDigest(header.Type) && _headerDigest && !Crc32C.Verify(pdu[..header.Hlen], pdu.Slice(header.Hlen, PduHeader.DigestSize)))
        {
            error = new ProtocolError(TermReqFes.HeaderDigestError, 0, "header digest mismatch");
            return PduParse.Fatal;
        }
        switch (header.Type)
        {
            case PduType.ICReq: return HandleICReq(pdu, out error);
            case PduType.CapsuleCmd: return HandleCapsule(pdu, header, out error);
            case PduType.H2CData: return HandleH2CData(pdu, header, out error);
            case PduType.H2CTermReq:
                _logger.LogWarning("queue {Qid} from {Remote}: host terminated the connection (FES {Fes}, FEI {Fei})",
                    _queuePair.Qid, RemoteEndpoint, TermReq.Fes(pdu), TermReq.Fei(pdu));
                return PduParse.Closed;
            default:
                error = new ProtocolError(TermReqFes.InvalidPduHeaderField, PduHeader.OffsetType, $"PDU type {(byte)header.Type:X2}h is not one a host sends");
                return PduParse.Fatal;
        }
    }

    private bool ValidateCommonHeader(in PduHeader header, out ProtocolError error)
    {
        error = default;
        int expectedHlen = PduHeader.ExpectedHlen(header.Type);
        if (expectedHlen < 0)
        {
            error = new(TermReqFes.InvalidPduHeaderField, PduHeader.OffsetType, $"unknown PDU type {(byte)header.Type:X2}h");
            return false;
        }
        if (!_icDone && header.Type != PduType.ICReq)
        {
            error = new(TermReqFes.PduSequenceError, PduHeader.OffsetType, $"{header.Type} before ICReq");
            return false;
        }
        if (_icDone && header.Type == PduType.ICReq)
        {
            error = new(TermReqFes.PduSequenceError, PduHeader.OffsetType, "second ICReq");
            return false;
        }
        if (header.Hlen != expectedHlen)
        {
            error = new(TermReqFes.InvalidPduHeaderField, PduHeader.OffsetHlen, $"HLEN {header.Hlen} for {header.Type}, expected {expectedHlen}");
            return false;
        }
        bool carriesDigest = CarriesDigest(header.Type);
        if (carriesDigest && header.HasHeaderDigest != _headerDigest)
        {
            error = new(TermReqFes.InvalidPduHeaderField, PduHeader.OffsetFlags, "HDGSTF does not match the negotiated header digest");
            return false;
        }
        int headerBytes = header.Hlen + (carriesDigest && _headerDigest ? PduHeader.DigestSize : 0);
        long maxPlen = header.Type switch
        {
            PduType.ICReq => PduHeader.IcReqLength,
            PduType.H2CTermReq => PduHeader.TermReqLength + PduHeader.MaxTermReqData,
            PduType.CapsuleCmd => PduHeader.DataOffset(headerBytes, false, 0) + 128 + InCapsuleLimit + PduHeader.DigestSize,
            _ => headerBytes + 128 + MaxH2CData + PduHeader.DigestSize,
        };
        if (header.Plen < headerBytes || header.Plen > maxPlen)
        {
            error = new(TermReqFes.InvalidPduHeaderField, PduHeader.OffsetPlen, $"PLEN {header.Plen} outside {headerBytes}..{maxPlen} for {header.Type}");
            return false;
        }
        return true;
    }

    /// <summary>
    /// Digests are all-or-nothing once negotiated: every PDU after the ICReq carries them, except a TermReq
    /// (which has no digest fields, so a host can end a connection whose digests it no longer trusts).
    /// </summary>
    private static bool CarriesDigest(PduType type) => type is not (PduType.ICReq or PduType.H2CTermReq);

    /// <summary>Locates the data of a capsule or H2CData PDU; checks PDO, DDGSTF and the data digest.</summary>
    private bool TryGetPduData(ReadOnlySpan<byte> pdu, in PduHeader header, out int offset, out int length, out ProtocolError error)
    {
        error = default;
        offset = 0;
        length = 0;
        int headerBytes = header.Hlen + (_headerDigest ? PduHeader.DigestSize : 0);
        if (header.Plen == headerBytes)
        {
            if (header.HasDataDigest) { error = new(TermReqFes.InvalidPduHeaderField, PduHeader.OffsetFlags, "DDGSTF set on a PDU without data"); return false; }
            return true;
        }
        if (header.Pdo < headerBytes || header.Pdo >= header.Plen)
        {
            error = new(TermReqFes.InvalidPduHeaderField, PduHeader.OffsetPdo, $"PDO {header.Pdo} outside the PDU (header {headerBytes}, PLEN {header.Plen})");
            return false;
        }
        if (header.HasDataDigest != _dataDigest)
        {
            error = new(TermReqFes.InvalidPduHeaderField, PduHeader.OffsetFlags, "DDGSTF does not match the negotiated data digest");
            return false;
        }
        offset = header.Pdo;
        length = (int)header.Plen - header.Pdo - (_dataDigest ? PduHeader.DigestSize : 0);
        if (length <= 0)
        {
            error = new(TermReqFes.InvalidPduHeaderField, PduHeader.OffsetPlen, $"PLEN {header.Plen} leaves no room for data after PDO {header.Pdo}");
            return false;
        }
        return true;
    }

    private PduParse HandleICReq(ReadOnlySpan<byte> pdu, out ProtocolError error)
    {
        error = default;
        if (InitializeConnection.Pfv(pdu) != InitializeConnection.Pfv0)
        {
            error = new(TermReqFes.UnsupportedParameter, InitializeConnection.OffsetPfv, $"PFV {InitializeConnection.Pfv(pdu)} is not supported");
            return PduParse.Fatal;
        }
        byte hpda = InitializeConnection.Pda(pdu);
        if (hpda > 31)
        {
            error = new(TermReqFes.InvalidPduHeaderField, InitializeConnection.OffsetPda, $"HPDA {hpda} is above 31");
            return PduParse.Fatal;
        }
        byte digest = InitializeConnection.Digest(pdu);
        _hostPda = hpda;
        _headerDigest = (digest & InitializeConnection.DigestHeader) != 0;
        _dataDigest = (digest & InitializeConnection.DigestData) != 0;
        _icDone = true;
        Span<byte> resp = stackalloc byte[PduHeader.IcRespLength];
        InitializeConnection.Write(resp, PduType.ICResp, pda: 0, (byte)(digest & 0x3), (uint)MaxH2CData);
        // The ICResp goes out before any other PDU can be queued: the host sends nothing until it has it.
        resp.CopyTo(_icResp);
        QueueIcResp();
        return PduParse.Consumed;
    }

    private PduParse HandleCapsule(ReadOnlySpan<byte> pdu, in PduHeader header, out ProtocolError error)
    {
        if (!TryGetPduData(pdu, header, out int dataOffset, out int dataLength, out error)) return PduParse.Fatal;
        if (dataLength > InCapsuleLimit)
        {
            error = new(TermReqFes.DataTransferLimitExceeded, PduHeader.OffsetPlen, $"{dataLength} bytes of in-capsule data, limit {InCapsuleLimit}");
            return PduParse.Fatal;
        }
        // In-capsule data must leave the receive buffer before this PDU is consumed; nothing is changed until it has
        // a buffer, so the PDU is simply handled again once buffers come back.
        AlignedBuffer? inCapsule = null;
        if (dataLength > 0 && !TryRentInCapsule(dataLength, out inCapsule)) return PduParse.NeedBuffer;
        if (!_freeSlots.TryDequeue(out int slot) && !TryCreateSlot(out slot))
        {
            if (inCapsule != null) _buffers.Return(inCapsule);
            error = new(TermReqFes.PduSequenceError, PduHeader.OffsetType, "more commands outstanding than the queue has entries");
            return PduParse.Fatal;
        }
        var cmd = _slots[slot]!;
        cmd.DeferState = TcpCommand.DeferNone;
        var request = cmd.Request;
        pdu.Slice(PduHeader.Size, SubmissionQueueEntry.Size).CopyTo(request.SqeBytes);
        bool dataDigestOk = dataLength == 0 || !_dataDigest
            || Crc32C.Verify(pdu.Slice(dataOffset, dataLength), pdu.Slice(dataOffset + dataLength, PduHeader.DigestSize));

        NvmeStatus? failure = null;
        if (!_queuePair.Parse(request)) failure = request.Status;
        else if (!dataDigestOk) failure = NvmeStatus.TransientTransportError;
        else if (!CheckSgl(request, dataLength, out var sglStatus)) failure = sglStatus;
        if (failure != null || request.DataLength == 0)
        {
            if (inCapsule != null) _buffers.Return(inCapsule);
            if (failure != null) return CompleteEarly(cmd, failure);
            Execute(cmd);
            return PduParse.Consumed;
        }
        if (inCapsule == null)
        {
            StartOrPark(cmd);
            return PduParse.Consumed;
        }
        cmd.AttachBuffer(inCapsule);
        pdu.Slice(dataOffset, request.DataLength).CopyTo(request.Data.Span);
        Execute(cmd);
        return PduParse.Consumed;
    }

    /// <summary>
    /// The SGL must describe exactly the transfer the command implies: in-capsule data (offset 0) or a
    /// transport data block for R2T/C2HData.
    /// </summary>
    private static bool CheckSgl(NvmeRequest request, int inCapsuleBytes, out NvmeStatus status)
    {
        status = NvmeStatus.Success;
        var sgl = request.Sqe.Sgl1;
        if (request.DataLength == 0)
            return true; // no data for this command: whatever the host described is not used
        if (request.Sqe.Psdt == 0) { status = NvmeStatus.InvalidField; return false; } // fabrics require SGLs
        if (sgl.Identifier == SglDescriptor.InCapsuleDataBlock)
        {
            if (request.Direction != DataDirection.HostToController) { status = NvmeStatus.SglDescriptorTypeInvalid; return false; }
            if (sgl.Address != 0) { status = NvmeStatus.SglOffsetInvalid; return false; }
            if (!request.TryAcceptSglLength(sgl.Length) || inCapsuleBytes != request.DataLength) { status = NvmeStatus.DataSglLengthInvalid; return false; }
            return true;
        }
        if (sgl.Identifier == SglDescriptor.TransportDataBlock)
        {
            if (inCapsuleBytes != 0 || !request.TryAcceptSglLength(sgl.Length)) { status = NvmeStatus.DataSglLengthInvalid; return false; }
            return true;
        }
        status = NvmeStatus.SglDescriptorTypeInvalid;
        return false;
    }

    /// <summary>Completes a command that failed before execution; its in-capsule data was already consumed with the PDU.</summary>
    private PduParse CompleteEarly(TcpCommand cmd, NvmeStatus? status = null)
    {
        if (status is { } s) cmd.Request.Status = s;
        Target.OnParseFailed(_queuePair, cmd.Request);
        QueueSend(SendKind.Response, cmd);
        return PduParse.Consumed;
    }

    private PduParse HandleH2CData(ReadOnlySpan<byte> pdu, in PduHeader header, out ProtocolError error)
    {
        if (!TryGetPduData(pdu, header, out int dataOffset, out int dataLength, out error)) return PduParse.Fatal;
        ushort ttag = DataPdu.TransferTag(pdu);
        var slots = _slots;
        if (ttag >= slots.Length || slots[ttag] is not { State: TcpCommandState.AwaitingH2CData })
        {
            error = new(TermReqFes.InvalidPduHeaderField, DataPdu.OffsetTransferTag, $"H2CData for unknown TTAG {ttag}");
            return PduParse.Fatal;
        }
        var cmd = slots[ttag]!;
        var request = cmd.Request;
        if (DataPdu.CommandId(pdu) != request.CommandId)
        {
            error = new(TermReqFes.InvalidPduHeaderField, DataPdu.OffsetCommandId, $"H2CData CCCID {DataPdu.CommandId(pdu)} does not match TTAG {ttag}");
            return PduParse.Fatal;
        }
        uint offset = DataPdu.DataOffset(pdu), length = DataPdu.DataLength(pdu);
        if (offset != cmd.H2CReceived)
        {
            error = new(TermReqFes.InvalidPduHeaderField, DataPdu.OffsetDataOffset, $"H2CData offset {offset}, expected {cmd.H2CReceived}");
            return PduParse.Fatal;
        }
        if (length != dataLength)
        {
            error = new(TermReqFes.InvalidPduHeaderField, DataPdu.OffsetDataLength, $"H2CData DATAL {length} but the PDU carries {dataLength} bytes");
            return PduParse.Fatal;
        }
        if (offset + length > request.DataLength)
        {
            error = new(TermReqFes.DataTransferOutOfRange, DataPdu.OffsetDataLength, $"H2CData ends at {offset + length}, transfer is {request.DataLength} bytes");
            return PduParse.Fatal;
        }
        bool last = (header.Flags & PduFlags.LastPdu) != 0;
        bool complete = offset + length == request.DataLength;
        if (last != complete)
        {
            error = new(TermReqFes.InvalidPduHeaderField, PduHeader.OffsetFlags, $"LAST_PDU {(last ? "set" : "clear")} at {offset + length} of {request.DataLength} bytes");
            return PduParse.Fatal;
        }
        pdu.Slice(dataOffset, dataLength).CopyTo(request.Data.Span[(int)offset..]);
        cmd.H2CReceived += dataLength;
        if (complete) Interlocked.Decrement(ref _awaitingData);
        // A data digest error is not fatal (TCP transport binding): the command fails with Transient Transport Error.
        if (_dataDigest && !Crc32C.Verify(pdu.Slice(dataOffset, dataLength), pdu.Slice(dataOffset + dataLength, PduHeader.DigestSize)))
            cmd.DataDigestFailed = true;
        if (complete && cmd.DataDigestFailed)
        {
            request.Status = NvmeStatus.TransientTransportError;
            return CompleteEarly(cmd);
        }
        if (complete) Execute(cmd);
        return PduParse.Consumed;
    }
}
