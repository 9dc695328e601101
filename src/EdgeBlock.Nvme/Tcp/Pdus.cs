using System.Buffers.Binary;

namespace EdgeBlock.Nvme.Tcp;

/// <summary>ICReq / ICResp fields (after the common header).</summary>
public static class InitializeConnection
{
    public const ushort Pfv0 = 0;
    public const byte DigestHeader = 0x01, DigestData = 0x02;

    public static ushort Pfv(ReadOnlySpan<byte> pdu) => BinaryPrimitives.ReadUInt16LittleEndian(pdu[8..]);
    /// <summary>ICReq HPDA / ICResp CPDA: required data alignment in dwords, 0's based.</summary>
    public static byte Pda(ReadOnlySpan<byte> pdu) => pdu[10];
    public static byte Digest(ReadOnlySpan<byte> pdu) => pdu[11];
    /// <summary>ICReq MAXR2T (0's based) / ICResp MAXH2CDATA (bytes).</summary>
    public static uint Dword3(ReadOnlySpan<byte> pdu) => BinaryPrimitives.ReadUInt32LittleEndian(pdu[12..]);

    public const uint OffsetPfv = 8, OffsetPda = 10, OffsetDigest = 11, OffsetMaxr2t = 12;

    /// <summary>Writes an ICReq (host) or ICResp (controller); both are 128 bytes.</summary>
    public static void Write(Span<byte> pdu, PduType type, byte pda, byte digest, uint dword3)
    {
        pdu[..PduHeader.IcReqLength].Clear();
        new PduHeader(type, PduFlags.None, PduHeader.IcReqLength, 0, PduHeader.IcReqLength).Write(pdu);
        BinaryPrimitives.WriteUInt16LittleEndian(pdu[8..], Pfv0);
        pdu[10] = pda;
        pdu[11] = digest;
        BinaryPrimitives.WriteUInt32LittleEndian(pdu[12..], dword3);
    }
}

/// <summary>H2CData / C2HData / R2T share one layout: CCCID, TTAG, offset, length.</summary>
public static class DataPdu
{
    public static ushort CommandId(ReadOnlySpan<byte> pdu) => BinaryPrimitives.ReadUInt16LittleEndian(pdu[8..]);
    public static ushort TransferTag(ReadOnlySpan<byte> pdu) => BinaryPrimitives.ReadUInt16LittleEndian(pdu[10..]);
    public static uint DataOffset(ReadOnlySpan<byte> pdu) => BinaryPrimitives.ReadUInt32LittleEndian(pdu[12..]);
    public static uint DataLength(ReadOnlySpan<byte> pdu) => BinaryPrimitives.ReadUInt32LittleEndian(pdu[16..]);

    public const uint OffsetCommandId = 8, OffsetTransferTag = 10, OffsetDataOffset = 12, OffsetDataLength = 16;

    /// <summary>Writes the 24-byte header part (common header + fields).</summary>
    public static void WriteHeader(Span<byte> pdu, PduType type, PduFlags flags, byte pdo, uint plen,
        ushort commandId, ushort transferTag, uint dataOffset, uint dataLength)
    {
        new PduHeader(type, flags, PduHeader.DataLength, pdo, plen).Write(pdu);
        BinaryPrimitives.WriteUInt16LittleEndian(pdu[8..], commandId);
        BinaryPrimitives.WriteUInt16LittleEndian(pdu[10..], transferTag);
        BinaryPrimitives.WriteUInt32LittleEndian(pdu[12..], dataOffset);
        BinaryPrimitives.WriteUInt32LittleEndian(pdu[16..], dataLength);
        BinaryPrimitives.WriteUInt32LittleEndian(pdu[20..], 0);
    }
}

/// <summary>H2CTermReq / C2HTermReq: FES and FEI, then a copy of the offending PDU header.</summary>
public static class TermReq
{
    public static TermReqFes Fes(ReadOnlySpan<byte> pdu) => (TermReqFes)BinaryPrimitives.ReadUInt16LittleEndian(pdu[8..]);
    /// <summary>FEI: for field errors the byte offset of the offending field; for digest errors the received digest.</summary>
    public static uint Fei(ReadOnlySpan<byte> pdu) => BinaryPrimitives.ReadUInt32LittleEndian(pdu[10..]);

    /// <summary>Writes the header; returns the PDU length including the copied offending header.</summary>
    public static int Write(Span<byte> pdu, PduType type, TermReqFes fes, uint fei, ReadOnlySpan<byte> offendingHeader)
    {
        int dataLength = Math.Min(offendingHeader.Length, PduHeader.MaxTermReqData);
        int plen = PduHeader.TermReqLength + dataLength;
        pdu[..PduHeader.TermReqLength].Clear();
        new PduHeader(type, PduFlags.None, PduHeader.TermReqLength, dataLength > 0 ? (byte)PduHeader.TermReqLength : (byte)0, (uint)plen).Write(pdu);
        BinaryPrimitives.WriteUInt16LittleEndian(pdu[8..], (ushort)fes);
        BinaryPrimitives.WriteUInt32LittleEndian(pdu[10..], fei);
        offendingHeader[..dataLength].CopyTo(pdu[PduHeader.TermReqLength..]);
        return plen;
    }
}
