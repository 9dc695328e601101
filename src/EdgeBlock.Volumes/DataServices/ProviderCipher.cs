using System.Runtime.InteropServices;

namespace EdgeBlock.Volumes;

/// <summary>
/// A cipher's implementation inside the OpenSSL provider that EVP would pick for it, called
/// through the provider's own function table (provider-cipher(7)) instead of the EVP layer.
/// </summary>
/// <remarks>
/// Why not EVP: a disk cipher sets a new IV for every 4 KiB unit, and EVP_CipherInit_ex with
/// only an IV still costs ~100 ns in OpenSSL 3.0 (a refcount round trip on the shared
/// EVP_CIPHER, an OSSL_PARAM query of the IV length), about 12 % of encrypting the unit. The
/// provider's init with a null key sets just the IV. Same code, same provider (the one the
/// library context's configuration selects, FIPS included); the function ids and signatures
/// are OpenSSL's provider ABI, fixed across 3.x because providers are loadable modules.
/// </remarks>
internal sealed unsafe class ProviderCipher
{
    // Function ids of OSSL_OP_CIPHER implementations (core_dispatch.h).
    private const int NewContextId = 1, EncryptInitId = 2, DecryptInitId = 3, CipherId = 6, FreeContextId = 7;

    private readonly nint _providerContext;
    private readonly delegate* unmanaged<nint, nint> _newContext;
    private readonly delegate* unmanaged<nint, byte*, nuint, byte*, nuint, nint, int> _encryptInit;
    private readonly delegate* unmanaged<nint, byte*, nuint, byte*, nuint, nint, int> _decryptInit;
    private readonly delegate* unmanaged<nint, byte*, nuint*, nuint, byte*, nuint, int> _cipherFunction;
    private readonly delegate* unmanaged<nint, void> _freeContext;

    public string Name { get; }

    public ProviderCipher(string name)
    {
        Name = name;
        // Never freed: the fetched EVP_CIPHER keeps the provider, and so these functions, loaded.
        nint cipher = LibCrypto.CipherFetch(0, name, null);
        if (cipher == 0)
        {
            throw LibCrypto.Failure($"EVP_CIPHER_fetch({name})");
        }
        nint provider = LibCrypto.CipherProvider(cipher);
        _providerContext = LibCrypto.ProviderContext(provider);
        int noCache;
        LibCrypto.OsslAlgorithm* algorithms = LibCrypto.QueryOperation(provider, LibCrypto.OperationCipher, &noCache);
        try
        {
            for (LibCrypto.OsslAlgorithm* algorithm = algorithms; algorithm != null && algorithm->Names != null; algorithm++)
            {
                string names = Marshal.PtrToStringUTF8((nint)algorithm->Names) ?? "";
                if (!names.Split(':').Contains(name, StringComparer.OrdinalIgnoreCase))
                {
                    continue;
                }
                for (LibCrypto.OsslDispatch* function = algorithm->Implementation; function->FunctionId != 0; function++)
                {
                    switch (function->FunctionId)
                    {
                        case NewContextId: _newContext = (delegate* unmanaged<nint, nint>)function->Function; break;
                        case EncryptInitId: _encryptInit = (delegate* unmanaged<nint, byte*, nuint, byte*, nuint, nint, int>)function->Function; break;
                        case DecryptInitId: _decryptInit = (delegate* unmanaged<nint, byte*, nuint, byte*, nuint, nint, int>)function->Function; break;
                        case CipherId: _cipherFunction = (delegate* unmanaged<nint, byte*, nuint*, nuint, byte*, nuint, int>)function->Function; break;
                        case FreeContextId: _freeContext = (delegate* unmanaged<nint, void>)function->Function; break;
                    }
                }
                break;
            }
        }
        finally
        {
            LibCrypto.UnqueryOperation(provider, LibCrypto.OperationCipher, algorithms);
        }
        if (_newContext == null || _encryptInit == null || _decryptInit == null || _cipherFunction == null || _freeContext == null)
        {
            throw new PlatformNotSupportedException($"the OpenSSL provider of {name} does not offer its functions (newctx, einit, dinit, cipher, freectx)");
        }
    }

    /// <summary>A new context keyed for one direction; the key schedule stays in it.</summary>
    public nint NewContext(ReadOnlySpan<byte> key, bool encrypt)
    {
        nint context = _newContext(_providerContext);
        if (context == 0)
        {
            throw LibCrypto.Failure($"{Name} newctx");
        }
        fixed (byte* k = key)
        {
            if (Init(context, k, (nuint)key.Length, null, 0, encrypt) != 1)
            {
                _freeContext(context);
                throw LibCrypto.Failure($"{Name} init");
            }
        }
        return context;
    }

    /// <summary>Sets a context's IV, keeping its key and direction.</summary>
    public void SetIv(nint context, byte* iv, int ivLength, bool encrypt)
    {
        if (Init(context, null, 0, iv, (nuint)ivLength, encrypt) != 1)
        {
            throw LibCrypto.Failure($"{Name} init (IV)");
        }
    }

    /// <summary>Transforms one whole message (for XTS, one data unit) with the context's IV.</summary>
    public void Transform(nint context, byte* input, byte* output, int length)
    {
        nuint written;
        if (_cipherFunction(context, output, &written, (nuint)length, input, (nuint)length) != 1)
        {
            throw LibCrypto.Failure($"{Name} cipher");
        }
    }

    /// <summary>Frees a context; OpenSSL wipes the key schedule in it (OPENSSL_clear_free).</summary>
    public void FreeContext(nint context)
    {
        if (context != 0)
        {
            _freeContext(context);
        }
    }

    private int Init(nint context, byte* key, nuint keyLength, byte* iv, nuint ivLength, bool encrypt) =>
        encrypt
            ? _encryptInit(context, key, keyLength, iv, ivLength, 0)
            : _decryptInit(context, key, keyLength, iv, ivLength, 0);
}
