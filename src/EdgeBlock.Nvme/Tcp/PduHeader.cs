using System.Buffers.Binary;

namespace EdgeBlock.Nvme.Tcp;

/// <summary>The 8-byte PDU common header: PDU-type, FLAGS, HLEN, PDO, PLEN.</summary>
public readonly struct PduHeader
{
    public const int Size = 8;
    public const int DigestSize = 4;

    // Header lengths (HLEN) of each PDU type, fixed by the binding.
    public const int IcReqLength = 128, IcRespLength = 128, TermReqLength = 24, CapsuleCmdLength = 72,
        CapsuleRespLength = 24, DataLength = 24, R2TLength = 24;

    /// <summary>A TermReq carries at most this many bytes of the offending PDU header.</summary>
    public const int MaxTermReqData = 128;

    // Offsets of the common header fields, for FEI.
    public const uint OffsetType = 0, OffsetFlags = 1, OffsetHlen = 2, OffsetPdo = 3, OffsetPlen = 4;

    public PduType Type { get; }
    public PduFlags Flags { get; }
    public byte Hlen { get; }
    public byte Pdo { get; }
    public uint Plen { get; }

    public PduHeader(PduType type, PduFlags flags, byte hlen, byte pdo, uint plen)
    {
        Type = type; Flags = flags; Hlen = hlen; Pdo = pdo; Plen = plen;
    }

    public static PduHeader Read(ReadOnlySpan<byte> b) =>
        new((PduType)b[0], (PduFlags)b[1], b[2], b[3], BinaryPrimitives.ReadUInt32LittleEndian(b[4..]));

    public void Write(Span<byte> b)
    {
        b[0] = (byte)Type;
        b[1] = (byte)Flags;
        b[2] = Hlen;
        b[3] = Pdo;
        BinaryPrimitives.WriteUInt32LittleEndian(b[4..], Plen);
    }

    public bool HasHeaderDigest => (Flags & PduFlags.Hdgstf) != 0;
    public bool HasDataDigest => (Flags & PduFlags.Ddgstf) != 0;

    /// <summary>The expected HLEN for a PDU type, or -1 for an unknown type.</summary>
    public static int ExpectedHlen(PduType type) => type switch
    {
        PduType.ICReq => IcReqLength,
        PduType.ICResp => IcRespLength,
        PduType.H2CTermReq or PduType.C2HTermReq => TermReqLength,
        PduType.CapsuleCmd => CapsuleCmdLength,
        PduType.CapsuleResp => CapsuleRespLength,
        PduType.H2CData or PduType.C2HData => DataLength,
        PduType.R2T => R2TLength,
        _ => -1,
    };

    /// <summary>PDO for data placed after a header (+ digest), rounded up to the peer's alignment (xPDA is 0's based dwords).</summary>
    public static int DataOffset(int hlen, bool headerDigest, int pda)
    {
        int afterHeader = hlen + (headerDigest ? DigestSize : 0);
        int align = (pda + 1) * 4;
        return (afterHeader + align - 1) / align * align;
    }
}
