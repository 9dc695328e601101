using System.Runtime.InteropServices;

namespace EdgeBlock.Bench.Xts;

/// <summary>
/// What `openssl speed -evp aes-256-xts` loops: EVP_CipherUpdate on one keyed context, never
/// re-initialised (so every call reuses one tweak — a speed anchor, not a usable cipher).
/// Measured in the same process and interleaved with the candidates, so a noisy neighbour hits
/// both sides of the ratio.
/// </summary>
internal sealed unsafe partial class OpenSslAnchor : IDisposable
{
    private const string Library = "libcrypto.so.3";
    private readonly nint _context;

    [LibraryImport(Library, EntryPoint = "EVP_CIPHER_fetch", StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint CipherFetch(nint libraryContext, string algorithm, string? properties);

    [LibraryImport(Library, EntryPoint = "EVP_CIPHER_CTX_new")]
    private static partial nint CipherContextNew();

    [LibraryImport(Library, EntryPoint = "EVP_CIPHER_CTX_free")]
    private static partial void CipherContextFree(nint context);

    [LibraryImport(Library, EntryPoint = "EVP_CipherInit_ex")]
    private static partial int CipherInit(nint context, nint cipher, nint engine, byte* key, byte* iv, int encrypt);

    [LibraryImport(Library, EntryPoint = "EVP_CipherUpdate")]
    private static partial int CipherUpdate(nint context, byte* output, int* outputLength, byte* input, int inputLength);

    public OpenSslAnchor(byte[] key, bool encrypt)
    {
        _context = CipherContextNew();
        byte* iv = stackalloc byte[16];
        new Span<byte>(iv, 16).Clear();
        fixed (byte* k = key)
        {
            if (CipherInit(_context, CipherFetch(0, "AES-256-XTS", null), 0, k, iv, encrypt ? 1 : 0) != 1)
            {
                throw new InvalidOperationException("EVP_CipherInit_ex failed");
            }
        }
    }

    public void Run(byte[] buffer)
    {
        fixed (byte* b = buffer)
        {
            int written;
            for (int offset = 0; offset < buffer.Length; offset += 4096)
            {
                if (CipherUpdate(_context, b + offset, &written, b + offset, 4096) != 1)
                {
                    throw new InvalidOperationException("EVP_CipherUpdate failed");
                }
            }
        }
    }

    /// <summary>
    /// The loop plus the one thing a disk cipher must add, a new tweak (IV) for every 4 KiB
    /// unit, set through EVP (EVP_CipherInit_ex with only an IV): candidate (a) as first
    /// planned, which XtsAes replaced by calling the provider's functions (see ProviderCipher).
    /// </summary>
    public void RunWithInit(byte[] buffer, ulong unit)
    {
        byte* iv = stackalloc byte[16];
        new Span<byte>(iv, 16).Clear();
        fixed (byte* b = buffer)
        {
            int written;
            for (int offset = 0; offset < buffer.Length; offset += 4096)
            {
                *(ulong*)iv = unit++;
                if (CipherInit(_context, 0, 0, null, iv, -1) != 1 || CipherUpdate(_context, b + offset, &written, b + offset, 4096) != 1)
                {
                    throw new InvalidOperationException("EVP_CipherInit_ex or EVP_CipherUpdate failed");
                }
            }
        }
    }

    public void Dispose() => CipherContextFree(_context);
}
