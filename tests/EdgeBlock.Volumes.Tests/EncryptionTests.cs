using System.Security.Cryptography;
using EdgeBlock.Storage;

namespace EdgeBlock.Volumes.Tests;

/// <summary>Encrypted volumes: nothing readable on the drives, keys checked, key sources refused with reasons.</summary>
public class EncryptionTests
{
    private const int Block = PoolLayout.BlockSize;

    [Theory]
    [InlineData("checksum+encrypt")]
    [InlineData("lz4+encrypt")]
    public async Task DrivesOfAnEncryptedVolume_HoldNoBlockWrittenThroughIt_AndEqualBlocksEncryptDifferently(string features)
    {
        await using TestPool t = await TestPool.CreateAsync();
        VolumeFeatures? f = Features.Parse(features);
        await t.Pool.CreateVolumeAsync("v", 1 << 20, features: f, key: t.KeyFor(f));
        var data = new byte[64 * Block];
        for (int b = 0; b < 64; b++) BlockPattern.Fill(data.AsSpan(b * Block, Block), b + 1); // odd: compressible, even: not
        // The same block at two places (different chunks).
        data.AsSpan(0, Block).CopyTo(data.AsSpan(32 * Block, Block));
        await using IBlockDevice dev = t.Pool.OpenVolume("v");
        Assert.Equal(BlockStatus.Success, await dev.WriteAsync(0, data, fua: false));
        Assert.Equal(BlockStatus.Success, await dev.FlushAsync());
        Assert.Equal(data, await TestPool.ReadAsync(dev, 0, 64));

        var written = new HashSet<string>();
        for (int b = 0; b < 64; b++) written.Add(Convert.ToHexString(data.AsSpan(b * Block, 64)));
        var stored = new Dictionary<string, int>();
        foreach (int drive in new[] { 0, 1 })
        {
            byte[] bytes = t.Drives[t.DrivePath(drive)].DurableCopy();
            for (long offset = PoolLayout.DataOffset; offset < bytes.Length; offset += Block)
            {
                ReadOnlySpan<byte> sector = bytes.AsSpan((int)offset, Block);
                if (sector.IndexOfAnyExcept((byte)0) < 0) continue;
                // No stored sector starts like a block written in clear (a 64-byte prefix is plenty).
                Assert.DoesNotContain(Convert.ToHexString(sector[..64]), written);
                string key = Convert.ToHexString(SHA256.HashData(sector));
                stored[key] = stored.GetValueOrDefault(key) + 1;
            }
        }
        Assert.True(stored.Count > 0);
        Assert.All(stored.Values, n => Assert.Equal(1, n)); // no two stored sectors alike, the repeated block included
    }

    [Fact]
    public async Task WrongKey_KeepsTheVolumeClosed_WhileOtherVolumesWork_AndTheRightKeyOpensIt()
    {
        await using TestPool t = await TestPool.CreateAsync();
        VolumeFeatures? f = Features.Parse("checksum+encrypt");
        VolumeKeySource key = t.Key;
        await t.Pool.CreateVolumeAsync("secret", 1 << 20, features: f, key: key);
        await t.Pool.CreateVolumeAsync("plain", 1 << 20);
        byte[] data = TestPool.Pattern(8, 1);
        await using (IBlockDevice dev = t.Pool.OpenVolume("secret"))
        {
            Assert.Equal(BlockStatus.Success, await dev.WriteAsync(0, data, fua: false));
        }
        byte[] right = File.ReadAllBytes(key.File!);
        TestPool.WriteKey(key.File!, RandomNumberGenerator.GetBytes(VolumeKeys.KeySize));
        await t.ReopenAsync();

        var refused = Assert.Throws<VolumeException>(() => t.Pool.OpenVolume("secret"));
        Assert.Contains("not this volume's key", refused.Message);
        Assert.Contains(key.File!, refused.Message);
        await using (IBlockDevice plain = t.Pool.OpenVolume("plain"))
        {
            Assert.Equal(BlockStatus.Success, await plain.WriteAsync(0, data, fua: false));
        }
        File.Delete(key.File!);
        Assert.Contains("does not exist", Assert.Throws<VolumeException>(() => t.Pool.OpenVolume("secret")).Message);

        TestPool.WriteKey(key.File!, right);
        await using IBlockDevice again = t.Pool.OpenVolume("secret");
        Assert.Equal(data, await TestPool.ReadAsync(again, 0, 8));
    }

    [Fact]
    public async Task KeySources_ThatAreMissingOrUnsafe_AreRefusedNamingTheProblem_AndCreateNothing()
    {
        await using TestPool t = await TestPool.CreateAsync();
        var f = new VolumeFeatures(Encrypted: true);
        string file = Path.Combine(t.Root, "k");
        async Task<string> Refusal(VolumeKeySource? key, VolumeFeatures? features = null) =>
            (await Assert.ThrowsAsync<VolumeException>(() => t.Pool.CreateVolumeAsync("v", 1 << 20, features: features ?? f, key: key))).Message;

        Assert.Contains("--key-file PATH", await Refusal(null));
        Assert.Contains("add --encrypt", await Refusal(t.Key, VolumeFeatures.None));
        Assert.Contains("does not exist", await Refusal(new VolumeKeySource(File: file)));
        Assert.Contains("absolute path", await Refusal(new VolumeKeySource(File: "relative.key")));
        File.WriteAllBytes(file, RandomNumberGenerator.GetBytes(64));
        File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        Assert.Contains("mode 0644", await Refusal(new VolumeKeySource(File: file)));
        TestPool.WriteKey(file, RandomNumberGenerator.GetBytes(32));
        Assert.Contains("holds 32 bytes", await Refusal(new VolumeKeySource(File: file)));
        TestPool.WriteKey(file, new byte[64]);
        Assert.Contains("halves", await Refusal(new VolumeKeySource(File: file)));
        Assert.Contains("exited with status 3: no TPM", await Refusal(new VolumeKeySource(Command: "echo no TPM >&2; exit 3")));
        Assert.Contains("printed 6 bytes", await Refusal(new VolumeKeySource(Command: "echo hello")));
        Assert.Empty(t.Pool.ListVolumes());

        // A command printing the key in hex is a key source like a file.
        string hex = Convert.ToHexString(RandomNumberGenerator.GetBytes(64));
        await t.Pool.CreateVolumeAsync("v", 1 << 20, features: f, key: new VolumeKeySource(Command: $"echo {hex}"));
        await t.ReopenAsync();
        await using IBlockDevice dev = t.Pool.OpenVolume("v");
        Assert.Equal(BlockStatus.Success, await dev.WriteAsync(0, TestPool.Pattern(4, 2), fua: false));
        Assert.True(t.Pool.GetVolume("v").Features!.Encrypted);
    }
}
