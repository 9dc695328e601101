using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace EdgeBlock.Nvme.Auth;

/// <summary>
/// A DH-HMAC-CHAP secret in the representation of <c>nvme gen-dhchap-key</c>: <c>DHHC-1:XX:BASE64:</c>,
/// BASE64 = secret || CRC-32 of the secret (little endian), XX = the hash that transforms the secret with
/// the NQN before use (00 none, 01 SHA-256, 02 SHA-384, 03 SHA-512). Secrets are 32, 48 or 64 bytes;
/// a transformed one has its hash's length (as the Linux host requires). <see cref="ToString"/> never shows it.
/// </summary>
public sealed class DhchapKey
{
    private const string Prefix = "DHHC-1:";
    private readonly byte[] _secret;

    private DhchapKey(byte[] secret, DhchapHash? transform)
    {
        _secret = secret;
        Transform = transform;
    }

    /// <summary>The hash of the NQN transform; null: the secret is used as is (XX = 00).</summary>
    public DhchapHash? Transform { get; }
    public int Length => _secret.Length;

    /// <summary>Parses the DHHC-1 representation; false with a message naming what is wrong (never the secret).</summary>
    public static bool TryParse(string? text, out DhchapKey? key, out string problem)
    {
        key = null;
        string t = (text ?? "").Trim();
        if (!t.StartsWith(Prefix, StringComparison.Ordinal))
        {
            problem = "a DH-HMAC-CHAP secret starts with 'DHHC-1:' (as nvme gen-dhchap-key writes it)";
            return false;
        }
        string[] parts = t[Prefix.Length..].Split(':');
        // DHHC-1:XX:BASE64: — the trailing colon is optional, as the Linux host reads it.
        if (parts.Length is < 2 or > 3 || (parts.Length == 3 && parts[2].Length != 0))
        {
            problem = "the secret's form is DHHC-1:XX:BASE64:";
            return false;
        }
        if (parts[0].Length != 2 || !byte.TryParse(parts[0], System.Globalization.NumberStyles.HexNumber, null, out byte xx) || xx > 3)
        {
            problem = $"the secret's transform '{parts[0]}' is not 00 (none), 01 (SHA-256), 02 (SHA-384) or 03 (SHA-512)";
            return false;
        }
        byte[] raw;
        try { raw = Convert.FromBase64String(parts[1]); }
        catch (FormatException)
        {
            problem = "the secret's key is not valid base64";
            return false;
        }
        if (raw.Length is not (36 or 52 or 68))
        {
            problem = $"the secret's key decodes to {raw.Length} bytes; it must be 32, 48 or 64 bytes plus a 4-byte CRC";
            return false;
        }
        var secret = raw[..^4];
        uint crc = BinaryPrimitives.ReadUInt32LittleEndian(raw.AsSpan(raw.Length - 4));
        if (crc != Crc32(secret))
        {
            CryptographicOperations.ZeroMemory(raw);
            problem = "the secret's CRC does not match its key (a typo or a truncated copy?)";
            return false;
        }
        CryptographicOperations.ZeroMemory(raw);
        DhchapHash? transform = xx == 0 ? null : (DhchapHash)xx;
        if (transform is { } h && secret.Length != DhchapNames.HashLength(h))
        {
            problem = $"a DHHC-1:{xx:X2} secret must be {DhchapNames.HashLength(h)} bytes (its transform's hash length), not {secret.Length}";
            return false;
        }
        key = new DhchapKey(secret, transform);
        problem = "";
        return true;
    }

    public static DhchapKey Parse(string text) =>
        TryParse(text, out var key, out string problem) ? key! : throw new FormatException(problem);

    /// <summary>A fresh random secret, as <c>nvme gen-dhchap-key</c> makes one (length: the transform's hash length, or 32).</summary>
    public static DhchapKey Generate(DhchapHash? transform = null, int? length = null) =>
        new(RandomNumberGenerator.GetBytes(length ?? (transform is { } h ? DhchapNames.HashLength(h) : 32)), transform);

    /// <summary>A key from raw secret bytes (tests, known-answer vectors).</summary>
    public static DhchapKey FromSecret(ReadOnlySpan<byte> secret, DhchapHash? transform) =>
        secret.Length is 32 or 48 or 64 ? new(secret.ToArray(), transform) : throw new ArgumentException("a secret is 32, 48 or 64 bytes", nameof(secret));

    /// <summary>The DHHC-1 representation (what the config file stores and nvme-cli takes).</summary>
    public string Format()
    {
        var raw = new byte[_secret.Length + 4];
        _secret.CopyTo(raw, 0);
        BinaryPrimitives.WriteUInt32LittleEndian(raw.AsSpan(_secret.Length), Crc32(_secret));
        string text = $"{Prefix}{(byte)(Transform ?? 0):X2}:{Convert.ToBase64String(raw)}:";
        CryptographicOperations.ZeroMemory(raw);
        return text;
    }

    /// <summary>
    /// The key the HMAC of a response uses: HMAC-hash(secret, NQN || "NVMe-over-Fabrics") for a transformed
    /// secret, else the secret itself. The host's secret is transformed with the host NQN, the controller's
    /// with the subsystem NQN.
    /// </summary>
    public byte[] TransformWith(string nqn)
    {
        if (Transform is not { } hash) return (byte[])_secret.Clone();
        byte[] nqnBytes = Encoding.UTF8.GetBytes(nqn);
        byte[] data = new byte[nqnBytes.Length + TransformLabel.Length];
        nqnBytes.CopyTo(data, 0);
        TransformLabel.CopyTo(data.AsSpan(nqnBytes.Length));
        return Dhchap.Hmac(hash, _secret, data);
    }

    private static ReadOnlySpan<byte> TransformLabel => "NVMe-over-Fabrics"u8;

    /// <summary>CRC-32 (IEEE, as zlib and the kernel's ~crc32(~0, ...)).</summary>
    private static uint Crc32(ReadOnlySpan<byte> data) => System.IO.Hashing.Crc32.HashToUInt32(data);

    public override string ToString() => $"DH-HMAC-CHAP secret ({Length} bytes, transform {(Transform is { } h ? DhchapNames.Name(h) : "none")})";
}
