using System.Numerics;
using System.Security.Cryptography;

namespace EdgeBlock.Nvme.Auth;

/// <summary>
/// Finite-field Diffie-Hellman over an RFC 7919 group (generator 2). Public values and shared secrets
/// are big-endian and padded to the prime's length, as DH-HMAC-CHAP carries and hashes them.
/// </summary>
public sealed class FfdheGroup
{
    private static readonly FfdheGroup?[] Groups = new FfdheGroup?[6];
    private readonly BigInteger _prime;
    private readonly BigInteger _primeMinusOne;

    private FfdheGroup(DhchapDhGroup id, string primeHex)
    {
        Id = id;
        _prime = new BigInteger(Convert.FromHexString(primeHex), isUnsigned: true, isBigEndian: true);
        _primeMinusOne = _prime - 1;
        SizeBytes = primeHex.Length / 2;
    }

    public DhchapDhGroup Id { get; }
    /// <summary>Length of public values and of the shared secret.</summary>
    public int SizeBytes { get; }

    public static int Bits(DhchapDhGroup id) => id switch
    {
        DhchapDhGroup.Ffdhe2048 => 2048,
        DhchapDhGroup.Ffdhe3072 => 3072,
        DhchapDhGroup.Ffdhe4096 => 4096,
        DhchapDhGroup.Ffdhe6144 => 6144,
        DhchapDhGroup.Ffdhe8192 => 8192,
        _ => 0,
    };

    /// <summary>The group of an ffdhe id (null for the null group or an unknown id).</summary>
    public static FfdheGroup? For(DhchapDhGroup id)
    {
        if (id == DhchapDhGroup.Null || !DhchapNames.IsDefined(id)) return null;
        return Groups[(int)id] ??= new FfdheGroup(id, id switch
        {
            DhchapDhGroup.Ffdhe2048 => FfdhePrimes.Ffdhe2048,
            DhchapDhGroup.Ffdhe3072 => FfdhePrimes.Ffdhe3072,
            DhchapDhGroup.Ffdhe4096 => FfdhePrimes.Ffdhe4096,
            DhchapDhGroup.Ffdhe6144 => FfdhePrimes.Ffdhe6144,
            _ => FfdhePrimes.Ffdhe8192,
        });
    }

    /// <summary>
    /// A private exponent and its public value 2^x mod p. The exponent has 512 bits: at least twice the
    /// strength of every group here (RFC 7919 section 5.2), and far cheaper than a full-length one.
    /// </summary>
    public (BigInteger PrivateKey, byte[] PublicValue) GenerateKeyPair()
    {
        var bytes = RandomNumberGenerator.GetBytes(64);
        bytes[0] |= 0x80;
        var x = new BigInteger(bytes, isUnsigned: true, isBigEndian: true);
        CryptographicOperations.ZeroMemory(bytes);
        return (x, ToBytes(BigInteger.ModPow(2, x, _prime)));
    }

    /// <summary>The shared secret peer^x mod p; false when the peer's value has the wrong length or is not in 2..p-2.</summary>
    public bool TryComputeSharedSecret(BigInteger privateKey, ReadOnlySpan<byte> peerPublic, out byte[] secret)
    {
        secret = [];
        if (peerPublic.Length != SizeBytes) return false;
        var y = new BigInteger(peerPublic, isUnsigned: true, isBigEndian: true);
        if (y <= BigInteger.One || y >= _primeMinusOne) return false;
        secret = ToBytes(BigInteger.ModPow(y, privateKey, _prime));
        return true;
    }

    private byte[] ToBytes(BigInteger value)
    {
        var result = new byte[SizeBytes];
        int n = value.GetByteCount(isUnsigned: true);
        value.TryWriteBytes(result.AsSpan(SizeBytes - n), out _, isUnsigned: true, isBigEndian: true);
        return result;
    }
}
