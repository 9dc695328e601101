using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace EdgeBlock.Volumes;

/// <summary>
/// The few OpenSSL 3 EVP calls XtsAes needs. libcrypto.so.3 is the library .NET's own
/// cryptography already loads on Linux, so this adds no dependency.
/// </summary>
internal static unsafe partial class LibCrypto
{
    private const string Library = "libcrypto.so.3";

    [LibraryImport(Library, EntryPoint = "EVP_CIPHER_fetch", StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint CipherFetch(nint libraryContext, string algorithm, string? properties);

    [LibraryImport(Library, EntryPoint = "EVP_CIPHER_CTX_new")]
    public static partial nint CipherContextNew();

    [LibraryImport(Library, EntryPoint = "EVP_CIPHER_CTX_free")]
    public static partial void CipherContextFree(nint context);

    /// <summary>EVP_CipherInit_ex: cipher and key may be null to keep the ones set; encrypt -1 keeps the direction.</summary>
    [LibraryImport(Library, EntryPoint = "EVP_CipherInit_ex")]
    public static partial int CipherInit(nint context, nint cipher, nint engine, byte* key, byte* iv, int encrypt);

    [LibraryImport(Library, EntryPoint = "EVP_CipherUpdate")]
    public static partial int CipherUpdate(nint context, byte* output, int* outputLength, byte* input, int inputLength);

    [LibraryImport(Library, EntryPoint = "ERR_get_error")]
    private static partial nuint ErrorGet();

    [LibraryImport(Library, EntryPoint = "ERR_error_string_n")]
    private static partial void ErrorString(nuint error, byte* buffer, nuint length);

    [LibraryImport(Library, EntryPoint = "ERR_clear_error")]
    private static partial void ErrorClear();

    /// <summary>
    /// Fetches a cipher once and keeps it for the process: an explicit fetch spares OpenSSL 3
    /// the implicit one a legacy EVP_aes_* pointer costs at every context set-up.
    /// </summary>
    public static nint FetchCipher(string algorithm)
    {
        nint cipher = CipherFetch(0, algorithm, null);
        return cipher != 0 ? cipher : throw Failure($"EVP_CIPHER_fetch({algorithm})");
    }

    /// <summary>
    /// An exception naming the call and OpenSSL's first queued error; clears the queue,
    /// which is per thread and would otherwise mislead the next caller on this thread.
    /// </summary>
    public static CryptographicException Failure(string call)
    {
        nuint error = ErrorGet();
        string reason = "no error queued";
        if (error != 0)
        {
            byte* text = stackalloc byte[256];
            ErrorString(error, text, 256);
            reason = Marshal.PtrToStringUTF8((nint)text) ?? reason;
        }
        ErrorClear();
        return new CryptographicException($"OpenSSL {call} failed: {reason}");
    }
}
