using EdgeBlock.Nvme.Tcp;

namespace EdgeBlock.PduFault;

/// <summary>
/// One malformed-PDU probe: what to send on a fresh connection and the C2HTermReq the controller must answer
/// with (FES, and FEI where the binding defines it) before closing the connection.
/// <see cref="Provoke"/> returns the offending PDU, whose header the C2HTermReq must echo.
/// </summary>
public sealed record PduFaultCase(string Name, string Description, TermReqFes ExpectedFes, uint? ExpectedFei,
    Func<RawPduConnection, CancellationToken, Task<byte[]>> Provoke)
{
    public override string ToString() => Name;
}

public sealed record PduFaultResult(PduFaultCase Case, bool Passed, string Detail, TermReqFes? Fes = null, uint? Fei = null);

/// <summary>The protocol fault cases (shared by tools/EdgeBlock.PduFault and the target tests).</summary>
public static class PduFaultCases
{
    private const ushort Cid = 0x0042;

    public static readonly PduFaultCase BadHlen = new("bad-hlen",
        "CapsuleCmd with HLEN 71 instead of 72", TermReqFes.InvalidPduHeaderField, PduHeader.OffsetHlen,
        async (c, ct) =>
        {
            await c.InitializeAsync(false, false, ct).ConfigureAwait(false);
            var pdu = RawPduConnection.CapsuleCmd(RawPduConnection.KeepAliveSqe(Cid));
            pdu[2] = PduHeader.CapsuleCmdLength - 1;
            await c.SendAsync(pdu, ct).ConfigureAwait(false);
            return pdu;
        });

    public static readonly PduFaultCase UnknownPduType = new("unknown-pdu-type",
        "PDU type 0Ah (not defined by the binding)", TermReqFes.InvalidPduHeaderField, PduHeader.OffsetType,
        async (c, ct) =>
        {
            await c.InitializeAsync(false, false, ct).ConfigureAwait(false);
            var pdu = new byte[PduHeader.DataLength];
            new PduHeader((PduType)0x0A, PduFlags.None, PduHeader.DataLength, 0, PduHeader.DataLength).Write(pdu);
            await c.SendAsync(pdu, ct).ConfigureAwait(false);
            return pdu;
        });

    public static readonly PduFaultCase SecondICReq = new("second-icreq",
        "a second ICReq after the connection is initialized", TermReqFes.PduSequenceError, 0,
        async (c, ct) =>
        {
            await c.InitializeAsync(false, false, ct).ConfigureAwait(false);
            var pdu = RawPduConnection.ICReq();
            await c.SendAsync(pdu, ct).ConfigureAwait(false);
            return pdu;
        });

    public static readonly PduFaultCase CapsuleBeforeICReq = new("capsule-before-icreq",
        "a CapsuleCmd as the first PDU, without ICReq", TermReqFes.PduSequenceError, 0,
        async (c, ct) =>
        {
            var pdu = RawPduConnection.CapsuleCmd(RawPduConnection.KeepAliveSqe(Cid));
            await c.SendAsync(pdu, ct).ConfigureAwait(false);
            return pdu;
        });

    /// <summary>FEI 0 as SPDK sends it (the target reports no digest value).</summary>
    public static readonly PduFaultCase BadHeaderDigest = new("bad-header-digest",
        "CapsuleCmd whose header digest is wrong (header digests negotiated)", TermReqFes.HeaderDigestError, 0,
        async (c, ct) =>
        {
            await c.InitializeAsync(true, false, ct).ConfigureAwait(false);
            var pdu = RawPduConnection.CapsuleCmd(RawPduConnection.KeepAliveSqe(Cid), headerDigest: true);
            pdu[PduHeader.CapsuleCmdLength] ^= 0xFF;
            await c.SendAsync(pdu, ct).ConfigureAwait(false);
            return pdu;
        });

    public static readonly PduFaultCase H2CDataUnknownTtag = new("h2cdata-unknown-ttag",
        "H2CData for a transfer tag the controller never issued", TermReqFes.InvalidPduHeaderField, DataPdu.OffsetTransferTag,
        (c, ct) => ProvokeAfterR2T(c, ct, (ttag, length) => RawPduConnection.H2CData(Cid, unchecked((ushort)(ttag + 1)), 0, length, last: true)));

    public static readonly PduFaultCase H2CDataWrongOffset = new("h2cdata-wrong-offset",
        "H2CData starting at DATAO 512 when the transfer starts at 0", TermReqFes.InvalidPduHeaderField, DataPdu.OffsetDataOffset,
        (c, ct) => ProvokeAfterR2T(c, ct, (ttag, length) => RawPduConnection.H2CData(Cid, ttag, (uint)length / 2, length / 2, last: true)));

    /// <summary>FEI is not defined for this FES; it is not checked.</summary>
    public static readonly PduFaultCase H2CDataOutOfRange = new("h2cdata-out-of-range",
        "H2CData carrying twice the bytes the R2T asked for", TermReqFes.DataTransferOutOfRange, null,
        (c, ct) => ProvokeAfterR2T(c, ct, (ttag, length) => RawPduConnection.H2CData(Cid, ttag, 0, length * 2, last: true)));

    public static IReadOnlyList<PduFaultCase> All { get; } =
        [BadHlen, UnknownPduType, SecondICReq, CapsuleBeforeICReq, BadHeaderDigest, H2CDataUnknownTtag, H2CDataWrongOffset, H2CDataOutOfRange];

    public static PduFaultCase Find(string name) =>
        All.FirstOrDefault(c => c.Name == name) ?? throw new ArgumentException($"no fault case '{name}'", nameof(name));

    /// <summary>Sends a Connect whose data waits for an R2T, reads the R2T, then sends the H2CData the builder makes.</summary>
    private static async Task<byte[]> ProvokeAfterR2T(RawPduConnection c, CancellationToken ct, Func<ushort, int, byte[]> buildH2CData)
    {
        await c.InitializeAsync(false, false, ct).ConfigureAwait(false);
        await c.SendAsync(RawPduConnection.CapsuleCmd(RawPduConnection.ConnectSqeWithoutInCapsuleData(Cid)), ct).ConfigureAwait(false);
        var r2t = await c.ReceivePduAsync(ct).ConfigureAwait(false);
        if (r2t[0] != (byte)PduType.R2T) throw new IOException($"expected an R2T for the Connect data, got PDU type {r2t[0]:X2}h");
        if (DataPdu.CommandId(r2t) != Cid || DataPdu.DataOffset(r2t) != 0 || DataPdu.DataLength(r2t) != Nvme.Connect.DataSize)
            throw new IOException($"R2T for CCCID {DataPdu.CommandId(r2t):X4}h R2TO {DataPdu.DataOffset(r2t)} R2TL {DataPdu.DataLength(r2t)}, expected {Cid:X4}h 0 {Nvme.Connect.DataSize}");
        var pdu = buildH2CData(DataPdu.TransferTag(r2t), Nvme.Connect.DataSize);
        await c.SendAsync(pdu, ct).ConfigureAwait(false);
        return pdu;
    }

    /// <summary>Runs one case on a fresh connection: C2HTermReq with the expected FES/FEI echoing the offending header, then a close.</summary>
    public static async Task<PduFaultResult> RunAsync(PduFaultCase fault, string host, int port, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout);
        try
        {
            await using var connection = await RawPduConnection.ConnectAsync(host, port, cts.Token).ConfigureAwait(false);
            byte[] offending = await fault.Provoke(connection, cts.Token).ConfigureAwait(false);
            byte[] pdu = await connection.ReceivePduAsync(cts.Token).ConfigureAwait(false);
            var verdict = CheckTermReq(fault, pdu, offending);
            if (verdict != null) return verdict;
            var fes = TermReq.Fes(pdu);
            uint fei = TermReq.Fei(pdu);
            if (!await connection.WaitForCloseAsync(cts.Token).ConfigureAwait(false))
                return new(fault, false, "the controller sent more after the C2HTermReq instead of closing", fes, fei);
            return new(fault, true, $"C2HTermReq FES {(ushort)fes:X2}h FEI {fei}, connection closed", fes, fei);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new(fault, false, $"no C2HTermReq and close within {timeout.TotalMilliseconds} ms");
        }
        catch (Exception ex) when (ex is IOException or System.Net.Sockets.SocketException)
        {
            return new(fault, false, ex.Message);
        }
    }

    private static PduFaultResult? CheckTermReq(PduFaultCase fault, byte[] pdu, byte[] offending)
    {
        var header = PduHeader.Read(pdu);
        if (header.Type != PduType.C2HTermReq) return new(fault, false, $"expected a C2HTermReq (03h), got PDU type {(byte)header.Type:X2}h");
        if (header.Hlen != PduHeader.TermReqLength || header.Plen > PduHeader.TermReqLength + PduHeader.MaxTermReqData)
            return new(fault, false, $"malformed C2HTermReq: HLEN {header.Hlen} PLEN {header.Plen}");
        var fes = TermReq.Fes(pdu);
        uint fei = TermReq.Fei(pdu);
        if (fes != fault.ExpectedFes) return new(fault, false, $"FES {(ushort)fes:X2}h ({fes}), expected {(ushort)fault.ExpectedFes:X2}h ({fault.ExpectedFes})", fes, fei);
        if (fault.ExpectedFei is { } expectedFei && fei != expectedFei) return new(fault, false, $"FEI {fei}, expected {expectedFei}", fes, fei);
        // The C2HTermReq carries the header of the PDU in error (at least its common header).
        var echoed = pdu.AsSpan(PduHeader.TermReqLength);
        int compare = Math.Min(Math.Min(offending.Length, PduHeader.MaxTermReqData), echoed.Length);
        if (echoed.Length < PduHeader.Size || !echoed[..compare].SequenceEqual(offending.AsSpan(0, compare)))
            return new(fault, false, $"C2HTermReq does not echo the offending PDU header ({echoed.Length} bytes: {Convert.ToHexString(echoed[..Math.Min(16, echoed.Length)])})", fes, fei);
        return null;
    }
}
