using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace EdgeBlock.Nvme.Auth;

/// <summary>
/// The DH-HMAC-CHAP computations both ends share (NVMe Base 2.x section 8.3.4, TP 8006):
/// the host's response R1 = HMAC(Kh', C1' || S1 || T_ID || SC_C || "HostHost" || NQNh || 00h || NQNs),
/// the controller's R2 = HMAC(Kc', C2' || S2 || T_ID || SC_C || "Controller" || NQNs || 00h || NQNh), where
/// K' is the transformed secret and C' the challenge, augmented with the DH shared secret when a group is used:
/// C' = HMAC(H(g^xy mod p), C).
/// </summary>
public static class Dhchap
{
    public static byte[] Hmac(DhchapHash hash, ReadOnlySpan<byte> key, ReadOnlySpan<byte> data) => hash switch
    {
        DhchapHash.Sha256 => HMACSHA256.HashData(key, data),
        DhchapHash.Sha384 => HMACSHA384.HashData(key, data),
        DhchapHash.Sha512 => HMACSHA512.HashData(key, data),
        _ => throw new ArgumentOutOfRangeException(nameof(hash), hash, "unknown DH-HMAC-CHAP hash"),
    };

    public static byte[] Hash(DhchapHash hash, ReadOnlySpan<byte> data) => hash switch
    {
        DhchapHash.Sha256 => SHA256.HashData(data),
        DhchapHash.Sha384 => SHA384.HashData(data),
        DhchapHash.Sha512 => SHA512.HashData(data),
        _ => throw new ArgumentOutOfRangeException(nameof(hash), hash, "unknown DH-HMAC-CHAP hash"),
    };

    /// <summary>C' = HMAC(H(shared secret), C): ties the response to the DH exchange.</summary>
    public static byte[] AugmentChallenge(DhchapHash hash, ReadOnlySpan<byte> sharedSecret, ReadOnlySpan<byte> challenge)
    {
        byte[] hashedKey = Hash(hash, sharedSecret);
        byte[] augmented = Hmac(hash, hashedKey, challenge);
        CryptographicOperations.ZeroMemory(hashedKey);
        return augmented;
    }

    /// <summary>The host's response R1 to the controller's challenge.</summary>
    public static byte[] HostResponse(DhchapHash hash, ReadOnlySpan<byte> transformedHostKey, ReadOnlySpan<byte> challenge,
        uint seqnum, ushort tid, string hostNqn, string subsysNqn) =>
        Response(hash, transformedHostKey, challenge, seqnum, tid, "HostHost"u8, hostNqn, subsysNqn);

    /// <summary>The controller's response R2 to the host's challenge (bidirectional authentication).</summary>
    public static byte[] ControllerResponse(DhchapHash hash, ReadOnlySpan<byte> transformedControllerKey, ReadOnlySpan<byte> challenge,
        uint seqnum, ushort tid, string hostNqn, string subsysNqn) =>
        Response(hash, transformedControllerKey, challenge, seqnum, tid, "Controller"u8, subsysNqn, hostNqn);

    private static byte[] Response(DhchapHash hash, ReadOnlySpan<byte> key, ReadOnlySpan<byte> challenge, uint seqnum, ushort tid,
        ReadOnlySpan<byte> label, string firstNqn, string secondNqn)
    {
        int first = Encoding.UTF8.GetByteCount(firstNqn), second = Encoding.UTF8.GetByteCount(secondNqn);
        var data = new byte[challenge.Length + 4 + 2 + 1 + label.Length + first + 1 + second];
        var w = data.AsSpan();
        challenge.CopyTo(w);
        w = w[challenge.Length..];
        BinaryPrimitives.WriteUInt32LittleEndian(w, seqnum);
        BinaryPrimitives.WriteUInt16LittleEndian(w[4..], tid);
        w[6] = DhchapMessage.NoSecureChannel; // SC_C
        w = w[7..];
        label.CopyTo(w);
        w = w[label.Length..];
        Encoding.UTF8.GetBytes(firstNqn, w);
        w[first] = 0;
        Encoding.UTF8.GetBytes(secondNqn, w[(first + 1)..]);
        return Hmac(hash, key, data);
    }

    /// <summary>A non-zero sequence number (zero in a Reply means "no controller authentication").</summary>
    public static uint NewSequenceNumber()
    {
        uint s;
        do s = BinaryPrimitives.ReadUInt32LittleEndian(RandomNumberGenerator.GetBytes(4)); while (s == 0);
        return s;
    }
}
