namespace EdgeBlock.Nvme.Auth;

/// <summary>
/// Authentication Send / Receive (fabrics FCTYPE 05h / 06h): CDW10 carries SPSP0 (byte 41), SPSP1 (42)
/// and SECP (43); CDW11 is TL (send) or AL (receive), the byte count of the data.
/// </summary>
public static class AuthCommand
{
    /// <summary>SECP of the NVMe in-band authentication protocols (DH-HMAC-CHAP).</summary>
    public const byte SecpDhchap = 0xE9;
    /// <summary>SPSP0 and SPSP1 are both 01h for DH-HMAC-CHAP.</summary>
    public const byte Spsp = 0x01;
    /// <summary>SQE byte offsets, reported as the error location of an Invalid Field.</summary>
    public const ushort Spsp0Offset = 41, Spsp1Offset = 42, SecpOffset = 43, LengthOffset = 44;

    /// <summary>Connect response DW0 bit 17: the host must authenticate this queue (AUTHREQ.ATR).</summary>
    public const uint ConnectAuthenticationRequired = 1u << 17;
    /// <summary>Connect response DW0 bit 18: secure channel concatenation required (AUTHREQ.ASCR), never set here.</summary>
    public const uint ConnectSecureChannelRequired = 1u << 18;

    public static byte Spsp0(in SubmissionQueueEntry sqe) => (byte)(sqe.Cdw10 >> 8);
    public static byte Spsp1(in SubmissionQueueEntry sqe) => (byte)(sqe.Cdw10 >> 16);
    public static byte Secp(in SubmissionQueueEntry sqe) => (byte)(sqe.Cdw10 >> 24);
    /// <summary>TL (Authentication Send) or AL (Authentication Receive).</summary>
    public static uint Length(in SubmissionQueueEntry sqe) => sqe.Cdw11;

    /// <summary>CDW10 for DH-HMAC-CHAP.</summary>
    public const uint DhchapCdw10 = (uint)SecpDhchap << 24 | (uint)Spsp << 16 | (uint)Spsp << 8;
}
