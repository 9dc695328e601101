using System.Buffers.Binary;
using System.Security.Cryptography;

namespace EdgeBlock.Volumes;

/// <summary>
/// AES-256-XTS (IEEE 1619-2007, NIST SP 800-38E) over whole data units, for encrypting
/// stored data. The tweak of a unit is its number as a 64-bit little-endian integer in the
/// first 8 bytes of the 16-byte tweak (dm-crypt's plain64), so unit n of a span starts at
/// <c>firstUnit + n</c>.
/// </summary>
/// <remarks>
/// <para>Why OpenSSL's AES-256-XTS and not an XTS written here over Aes.EncryptEcb: measured
/// with bench/xts.sh (BENCHMARKS.md, "AES-256-XTS primitive"), 4 KiB units, per CPU-second
/// against openssl speed's own loop in the same process, this class runs at 88-94 %, the
/// managed XTS at 17-18 % over one-shot EncryptEcb (128 B allocated per call) and 50-53 % over
/// ECB transforms kept per thread. OpenSSL keeps the tweaks in registers inside its unrolled
/// AES-NI loop, where the managed one passes the data three times (XOR, ECB, XOR), and .NET's
/// one-shot ECB keys a new native context on every call. .NET 10 has no VAES intrinsics that
/// could let managed code overtake it. OpenSSL's XTS is called through its provider functions,
/// not EVP, because EVP's per-unit IV set-up alone costs ~12 % of a unit (see ProviderCipher).</para>
/// <para>Thread safety: any number of threads may call Encrypt and Decrypt at once; each call
/// rents a keyed context from a pool (a cipher context is single-threaded) and sets only its IV
/// per unit, which keeps the key schedule. No allocation per call once the pool
/// holds a context per concurrent caller. Dispose must not race calls, as with any
/// IDisposable.</para>
/// <para>Lengths: a data unit is a multiple of 16 bytes (4096 for volumes; the IEEE vectors
/// use 512). Units that end in a partial block need ciphertext stealing, which stored data
/// never needs, so those lengths are refused rather than supported.</para>
/// </remarks>
public sealed unsafe class XtsAes : IDisposable
{
    /// <summary>Key1 (data) then Key2 (tweak), 32 bytes each.</summary>
    public const int KeySize = 64;

    public const int DefaultUnitSize = 4096;

    /// <summary>IEEE 1619-2018 and SP 800-38E cap a data unit at 2^20 blocks; OpenSSL enforces it.</summary>
    public const int MaxUnitSize = 16 << 20;

    private const int BlockSize = 16;

    private static readonly Lazy<ProviderCipher> s_cipher = new(() => new ProviderCipher("AES-256-XTS"));

    // Pinned so the GC never leaves a stray copy of the key behind when it compacts the heap.
    private readonly byte[] _key;
    private readonly CipherContextPool _encryptors;
    private readonly CipherContextPool _decryptors;
    private int _disposed;

    public XtsAes(ReadOnlySpan<byte> key)
    {
        if (key.Length != KeySize)
        {
            throw new ArgumentException($"an AES-256-XTS key is {KeySize} bytes (two AES-256 keys), not {key.Length}", nameof(key));
        }
        // XTS with Key1 == Key2 loses its security proof (Rogaway 2004); SP 800-38E and
        // FIPS IG A.9 require the halves to differ.
        if (CryptographicOperations.FixedTimeEquals(key[..(KeySize / 2)], key[(KeySize / 2)..]))
        {
            throw new ArgumentException("the two halves of an XTS key must differ (Key1 == Key2 is refused by IEEE 1619 / SP 800-38E)", nameof(key));
        }
        _key = GC.AllocateArray<byte>(KeySize, pinned: true);
        key.CopyTo(_key);
        ProviderCipher cipher = s_cipher.Value;
        int slots = Math.Max(4, 2 * Environment.ProcessorCount);
        _encryptors = new CipherContextPool(slots, () => cipher.NewContext(_key, encrypt: true), cipher.FreeContext);
        _decryptors = new CipherContextPool(slots, () => cipher.NewContext(_key, encrypt: false), cipher.FreeContext);
        // Key it once now, so a key OpenSSL refuses fails here and not on the first I/O.
        _encryptors.Return(_encryptors.Rent());
    }

    /// <summary>Encrypts whole data units; <paramref name="plain"/> and <paramref name="cipher"/> may be the same span.</summary>
    public void Encrypt(ReadOnlySpan<byte> plain, Span<byte> cipher, ulong firstUnit, int unitSize = DefaultUnitSize) =>
        Transform(_encryptors, encrypt: true, plain, cipher, firstUnit, unitSize);

    /// <summary>Decrypts whole data units; <paramref name="cipher"/> and <paramref name="plain"/> may be the same span.</summary>
    public void Decrypt(ReadOnlySpan<byte> cipher, Span<byte> plain, ulong firstUnit, int unitSize = DefaultUnitSize) =>
        Transform(_decryptors, encrypt: false, cipher, plain, firstUnit, unitSize);

    private void Transform(CipherContextPool pool, bool encrypt, ReadOnlySpan<byte> input, Span<byte> output, ulong firstUnit, int unitSize)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        Validate(input, output, unitSize);
        ProviderCipher cipher = s_cipher.Value;
        nint context = pool.Rent();
        try
        {
            byte* iv = stackalloc byte[BlockSize];
            BinaryPrimitives.WriteUInt64LittleEndian(new Span<byte>(iv + 8, 8), 0);
            fixed (byte* source = input)
            fixed (byte* destination = output)
            {
                int units = input.Length / unitSize;
                for (int unit = 0; unit < units; unit++)
                {
                    BinaryPrimitives.WriteUInt64LittleEndian(new Span<byte>(iv, 8), firstUnit + (ulong)unit);
                    cipher.SetIv(context, iv, BlockSize, encrypt);
                    int offset = unit * unitSize;
                    cipher.Transform(context, source + offset, destination + offset, unitSize);
                }
            }
        }
        catch
        {
            // A context that failed mid-call is not trusted again.
            pool.Free(context);
            throw;
        }
        pool.Return(context);
    }

    private static void Validate(ReadOnlySpan<byte> input, Span<byte> output, int unitSize)
    {
        if (unitSize <= 0 || unitSize > MaxUnitSize || unitSize % BlockSize != 0)
        {
            throw new ArgumentException(
                $"the data unit size must be a positive multiple of {BlockSize} up to {MaxUnitSize} bytes, not {unitSize}: partial blocks need ciphertext stealing, which XtsAes does not support",
                nameof(unitSize));
        }
        if (input.Length % unitSize != 0)
        {
            throw new ArgumentException($"the data ({input.Length} bytes) is not a whole number of {unitSize}-byte units", nameof(input));
        }
        if (output.Length != input.Length)
        {
            throw new ArgumentException($"the output is {output.Length} bytes, the input {input.Length}", nameof(output));
        }
        if (input.Overlaps(output, out int shift) && shift != 0)
        {
            throw new ArgumentException("input and output overlap without being the same span", nameof(output));
        }
    }

    /// <summary>Zeroes the key and frees the contexts (OpenSSL wipes their key schedules as it frees them).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        _encryptors.Dispose();
        _decryptors.Dispose();
        CryptographicOperations.ZeroMemory(_key);
    }
}
