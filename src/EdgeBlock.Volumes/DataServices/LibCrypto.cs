using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace EdgeBlock.Volumes;

/// <summary>
/// The few OpenSSL 3 calls XtsAes needs to find a cipher's provider implementation.
/// libcrypto.so.3 is the library .NET's own cryptography already loads on Linux, so this adds
/// no dependency.
/// </summary>
internal static unsafe partial class LibCrypto
{
    private const string Library = "libcrypto.so.3";

    /// <summary>OSSL_OP_CIPHER, the provider operation of symmetric ciphers (core_dispatch.h).</summary>
    public const int OperationCipher = 2;

    [LibraryImport(Library, EntryPoint = "EVP_CIPHER_fetch", StringMarshalling = StringMarshalling.Utf8)]
    public static partial nint CipherFetch(nint libraryContext, string algorithm, string? properties);

    [LibraryImport(Library, EntryPoint = "EVP_CIPHER_get0_provider")]
    public static partial nint CipherProvider(nint cipher);

    [LibraryImport(Library, EntryPoint = "OSSL_PROVIDER_get0_provider_ctx")]
    public static partial nint ProviderContext(nint provider);

    /// <summary>The provider's OSSL_ALGORITHM array for an operation, ended by an entry with no names.</summary>
    [LibraryImport(Library, EntryPoint = "OSSL_PROVIDER_query_operation")]
    public static partial OsslAlgorithm* QueryOperation(nint provider, int operation, int* noCache);

    [LibraryImport(Library, EntryPoint = "OSSL_PROVIDER_unquery_operation")]
    public static partial void UnqueryOperation(nint provider, int operation, OsslAlgorithm* algorithms);

    [LibraryImport(Library, EntryPoint = "ERR_get_error")]
    private static partial nuint ErrorGet();

    [LibraryImport(Library, EntryPoint = "ERR_error_string_n")]
    private static partial void ErrorString(nuint error, byte* buffer, nuint length);

    [LibraryImport(Library, EntryPoint = "ERR_clear_error")]
    private static partial void ErrorClear();

    /// <summary>OSSL_ALGORITHM (core.h).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct OsslAlgorithm
    {
        public byte* Names; // "AES-256-XTS:1.3.111.2.1619.0.1.2", colon-separated
        public byte* Properties;
        public OsslDispatch* Implementation;
        public byte* Description;
    }

    /// <summary>OSSL_DISPATCH (core.h): one function of an implementation, the list ended by id 0.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct OsslDispatch
    {
        public int FunctionId;
        public nint Function;
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
