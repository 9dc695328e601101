using System.Buffers.Binary;

namespace EdgeBlock.Nvme.Auth;

/// <summary>AUTH_Type and AUTH_Id of the DH-HMAC-CHAP messages (byte 0 and 1 of every message).</summary>
public static class DhchapMessage
{
    /// <summary>AUTH_Type of AUTH_Negotiate and AUTH_Failure1.</summary>
    public const byte CommonMessages = 0x00;
    /// <summary>AUTH_Type of Challenge, Reply, Success1/2 and Failure2.</summary>
    public const byte DhchapMessages = 0x01;

    public const byte Negotiate = 0x00, Challenge = 0x01, Reply = 0x02, Success1 = 0x03, Success2 = 0x04, Failure2 = 0xF0, Failure1 = 0xF1;

    /// <summary>Authentication protocol identifier of DH-HMAC-CHAP in the negotiate descriptor.</summary>
    public const byte DhchapAuthId = 0x01;
    /// <summary>SC_C: no secure channel concatenation (the only value served).</summary>
    public const byte NoSecureChannel = 0x00;
    /// <summary>AUTH_Failure reason code: authentication failure (the explanation carries the detail).</summary>
    public const byte ReasonFailed = 0x01;

    /// <summary>Every message starts with type, id, 2 reserved bytes and T_ID.</summary>
    public const int HeaderSize = 16, FailureSize = 8, NegotiateSize = 8 + DescriptorSize, DescriptorSize = 64;
    /// <summary>Offsets inside the descriptor's ID list: hashes from 0, DH groups from 30.</summary>
    public const int MaxHashIds = 30, MaxDhGroupIds = 30;

    public static byte Type(ReadOnlySpan<byte> m) => m[0];
    public static byte Id(ReadOnlySpan<byte> m) => m[1];
    public static ushort TransactionId(ReadOnlySpan<byte> m) => BinaryPrimitives.ReadUInt16LittleEndian(m[4..]);

    private static void WriteHeader(Span<byte> m, int size, byte type, byte id, ushort tid)
    {
        m[..size].Clear();
        m[0] = type;
        m[1] = id;
        BinaryPrimitives.WriteUInt16LittleEndian(m[4..], tid);
    }

    // ---- AUTH_Negotiate: type, id, rsvd, T_ID, SC_C, NAPD, descriptors (AUTH_ID, rsvd, HALEN, DHLEN, ID list[60])

    public static int WriteNegotiate(Span<byte> m, ushort tid, ReadOnlySpan<DhchapHash> hashes, ReadOnlySpan<DhchapDhGroup> groups)
    {
        WriteHeader(m, NegotiateSize, CommonMessages, Negotiate, tid);
        m[6] = NoSecureChannel;
        m[7] = 1; // NAPD: one protocol descriptor
        var d = m[8..];
        d[0] = DhchapAuthId;
        d[2] = (byte)hashes.Length;
        d[3] = (byte)groups.Length;
        for (int i = 0; i < hashes.Length; i++) d[4 + i] = (byte)hashes[i];
        for (int i = 0; i < groups.Length; i++) d[4 + MaxHashIds + i] = (byte)groups[i];
        return NegotiateSize;
    }

    public static byte SecureChannel(ReadOnlySpan<byte> m) => m[6];
    public static byte ProtocolDescriptors(ReadOnlySpan<byte> m) => m[7];
    public static byte DescriptorAuthId(ReadOnlySpan<byte> m) => m[8];
    public static ReadOnlySpan<byte> OfferedHashes(ReadOnlySpan<byte> m) => m.Slice(12, Math.Min((int)m[10], MaxHashIds));
    public static ReadOnlySpan<byte> OfferedGroups(ReadOnlySpan<byte> m) => m.Slice(12 + MaxHashIds, Math.Min((int)m[11], MaxDhGroupIds));
    public static bool DescriptorListsFit(ReadOnlySpan<byte> m) => m[10] <= MaxHashIds && m[11] <= MaxDhGroupIds;

    // ---- DH-HMAC-CHAP_Challenge: ..., HL, rsvd, HASHID, DHGID, DHVLEN, SEQNUM, C1[HL], DH value[DHVLEN]

    public static int WriteChallenge(Span<byte> m, ushort tid, DhchapHash hash, DhchapDhGroup group, uint seqnum, ReadOnlySpan<byte> challenge, ReadOnlySpan<byte> dhValue)
    {
        int size = HeaderSize + challenge.Length + dhValue.Length;
        WriteHeader(m, size, DhchapMessages, Challenge, tid);
        m[6] = (byte)challenge.Length;
        m[8] = (byte)hash;
        m[9] = (byte)group;
        BinaryPrimitives.WriteUInt16LittleEndian(m[10..], (ushort)dhValue.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(m[12..], seqnum);
        challenge.CopyTo(m[HeaderSize..]);
        dhValue.CopyTo(m[(HeaderSize + challenge.Length)..]);
        return size;
    }

    /// <summary>HL of Challenge, Reply and Success1.</summary>
    public static byte HashLength(ReadOnlySpan<byte> m) => m[6];
    public static DhchapHash ChallengeHash(ReadOnlySpan<byte> m) => (DhchapHash)m[8];
    public static DhchapDhGroup ChallengeGroup(ReadOnlySpan<byte> m) => (DhchapDhGroup)m[9];
    /// <summary>DHVLEN of Challenge and Reply.</summary>
    public static ushort DhValueLength(ReadOnlySpan<byte> m) => BinaryPrimitives.ReadUInt16LittleEndian(m[10..]);
    /// <summary>SEQNUM of Challenge (S1) and Reply (S2; 0 when the host does not authenticate the controller).</summary>
    public static uint SequenceNumber(ReadOnlySpan<byte> m) => BinaryPrimitives.ReadUInt32LittleEndian(m[12..]);

    // ---- DH-HMAC-CHAP_Reply: ..., HL, rsvd, CVALID, rsvd, DHVLEN, SEQNUM, R1[HL], C2[HL], DH value[DHVLEN]

    public static int WriteReply(Span<byte> m, ushort tid, ReadOnlySpan<byte> response, ReadOnlySpan<byte> controllerChallenge, uint seqnum, ReadOnlySpan<byte> dhValue)
    {
        int hl = response.Length;
        int size = HeaderSize + 2 * hl + dhValue.Length;
        WriteHeader(m, size, DhchapMessages, Reply, tid);
        m[6] = (byte)hl;
        m[8] = controllerChallenge.IsEmpty ? (byte)0 : (byte)1;
        BinaryPrimitives.WriteUInt16LittleEndian(m[10..], (ushort)dhValue.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(m[12..], seqnum);
        response.CopyTo(m[HeaderSize..]);
        controllerChallenge.CopyTo(m[(HeaderSize + hl)..]);
        dhValue.CopyTo(m[(HeaderSize + 2 * hl)..]);
        return size;
    }

    public static bool ChallengeValid(ReadOnlySpan<byte> m) => (m[8] & 1) != 0;

    // ---- DH-HMAC-CHAP_Success1: ..., HL, rsvd, RVALID, rsvd[7], R2[HL]

    public static int WriteSuccess1(Span<byte> m, ushort tid, int hashLength, ReadOnlySpan<byte> controllerResponse)
    {
        int size = HeaderSize + hashLength;
        WriteHeader(m, size, DhchapMessages, Success1, tid);
        m[6] = (byte)hashLength;
        if (!controllerResponse.IsEmpty)
        {
            m[8] = 1;
            controllerResponse.CopyTo(m[HeaderSize..]);
        }
        return size;
    }

    public static bool ResponseValid(ReadOnlySpan<byte> m) => (m[8] & 1) != 0;

    // ---- DH-HMAC-CHAP_Success2 and AUTH_Failure1/2

    public static int WriteSuccess2(Span<byte> m, ushort tid)
    {
        WriteHeader(m, HeaderSize, DhchapMessages, Success2, tid);
        return HeaderSize;
    }

    /// <summary>Failure1 (controller to host) is a common message; Failure2 (host to controller) a DH-HMAC-CHAP one.</summary>
    public static int WriteFailure(Span<byte> m, byte id, ushort tid, DhchapFailureReason explanation)
    {
        WriteHeader(m, FailureSize, id == Failure1 ? CommonMessages : DhchapMessages, id, tid);
        m[6] = ReasonFailed;
        m[7] = (byte)explanation;
        return FailureSize;
    }

    public static DhchapFailureReason FailureExplanation(ReadOnlySpan<byte> m) => (DhchapFailureReason)m[7];
}
