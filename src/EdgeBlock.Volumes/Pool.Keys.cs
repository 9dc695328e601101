using System.Security.Cryptography;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Volumes;

/// <summary>
/// Keys of encrypted volumes. A volume keeps where its key comes from and a check value, never
/// the key: the key is fetched when the volume is created and when it is first opened after
/// the pool opens, and a key whose check value differs keeps the volume closed (the pool and
/// the other volumes are not affected).
/// </summary>
public sealed partial class Pool
{
    /// <summary>For a new volume: its cipher and what its record keeps, or nothing when it is not encrypted.</summary>
    private static (XtsAes? Cipher, VolumeEncryption? Encryption) NewVolumeKey(string volume, VolumeFeatures features, VolumeKeySource? key)
    {
        if (!features.Encrypted)
        {
            if (key is not null) throw new VolumeException(VolumeError.Invalid, $"volume {volume}: a key source is given but encryption is not asked for (add --encrypt)");
            return (null, null);
        }
        if (key is null)
        {
            throw new VolumeException(VolumeError.Invalid,
                $"volume {volume}: encryption needs a key: --key-file PATH (a file of {VolumeKeys.KeySize} random bytes, mode 0600) or --key-command CMD (a command that prints the key)");
        }
        byte[] bytes = VolumeKeys.Load(key, volume);
        try
        {
            return (NewCipher(bytes, volume), new VolumeEncryption(key, VolumeKeys.Check(bytes)));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bytes);
        }
    }

    private static XtsAes NewCipher(byte[] key, string volume)
    {
        try
        {
            return new XtsAes(key);
        }
        catch (ArgumentException e)
        {
            throw new VolumeException(VolumeError.Invalid, $"volume {volume}: the key is not usable: {e.Message}", e);
        }
    }

    /// <summary>Loads and checks the key of an encrypted volume before its first open (outside the lock: a key command may take seconds).</summary>
    private void UnlockIfEncrypted(string name)
    {
        VolumeEncryption? encryption;
        lock (MetaLock)
        {
            Volume v = Find(name);
            if (v.Cipher is not null || v.Record.Encryption is null) return;
            encryption = v.Record.Encryption;
        }
        string volume = $"{Name}/{name}";
        byte[] key = VolumeKeys.Load(encryption.Source, volume);
        XtsAes cipher;
        try
        {
            if (VolumeKeys.Check(key) != encryption.Check)
            {
                _logger.LogError("pool {Pool}: volume {Volume} stays closed: the key from its {Source} is not its key", Name, name, encryption.Source);
                throw new VolumeException(VolumeError.Invalid, $"volume {volume}: the key from its {encryption.Source} is not this volume's key (its check value differs); the volume stays closed until the right key is there");
            }
            cipher = NewCipher(key, volume);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
        lock (MetaLock)
        {
            Volume v = Find(name);
            if (v.Cipher is null) v.Cipher = cipher;
            else cipher.Dispose();
        }
    }
}
