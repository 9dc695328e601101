using System.Security.Cryptography;
using EdgeBlock.Storage;

namespace EdgeBlock.Volumes.Tests;

/// <summary>A pool on crashable in-memory drives with its RocksDB in a temporary directory.</summary>
internal sealed class TestPool : IAsyncDisposable
{
    public const int Extent = 64 * 1024;
    // RocksDB syncs on every commit: on tmpfs that costs nothing, so the crash test fits in CI.
    public readonly string Root = Directory.Exists("/dev/shm")
        ? Directory.CreateDirectory(Path.Combine("/dev/shm", "edgeblock-pool-" + Guid.NewGuid().ToString("N"))).FullName
        : Directory.CreateTempSubdirectory("edgeblock-pool-").FullName;
    public readonly DriveSet Drives = new();
    public Pool Pool = null!;

    public string MetadataDir { get; set; }

    private TestPool() => MetadataDir = Path.Combine(Root, "meta");
    public string DrivePath(int i) => Path.Combine(Root, $"drive{i}");

    public PoolOptions Options() => new()
    {
        OpenDrive = Drives.Open,
        ExtentSize = ExtentSize,
        CommitInterval = TimeSpan.Zero,
        CompactInterval = SelfManaging ? TimeSpan.FromMilliseconds(50) : TimeSpan.Zero,
        CommitOnFreedSpace = SelfManaging,
        OpenOrigin = OpenOrigin,
    };

    /// <summary>How the pool opens attached volumes' origins after a reopen (origin tests set it).</summary>
    public Func<VolumeOriginRecord, IVolumeOrigin>? OpenOrigin { get; set; }

    /// <summary>
    /// Lets the pool commit when overwrites hold much space and compact on its own, as a daemon's
    /// pool does (off: the test drives every commit and compaction).
    /// </summary>
    public bool SelfManaging { get; init; }

    /// <summary>The pool's extent size (the daemon's default is 1 MiB; tests use 64 KiB unless they say).</summary>
    public int ExtentSize { get; init; } = Extent;

    /// <summary>A pool of n drives of driveBytes each (1 MiB of each goes to the label area).</summary>
    public static async Task<TestPool> CreateAsync(int drives = 2, long driveBytes = 4 << 20, bool selfManaging = false, int extentSize = Extent)
    {
        var t = new TestPool { SelfManaging = selfManaging, ExtentSize = extentSize };
        var specs = Enumerable.Range(0, drives).Select(i => new PoolDriveSpec(t.DrivePath(i), driveBytes)).ToList();
        t.Pool = await Pool.CreateAsync("tank", t.MetadataDir, specs, t.Options());
        return t;
    }

    /// <summary>A key file (64 random bytes, mode 0600) for encrypted volumes, made on first use.</summary>
    public VolumeKeySource Key
    {
        get
        {
            string path = Path.Combine(Root, "volume.key");
            if (!File.Exists(path)) WriteKey(path, RandomNumberGenerator.GetBytes(VolumeKeys.KeySize));
            return new VolumeKeySource(File: path);
        }
    }

    public static void WriteKey(string path, byte[] key)
    {
        File.WriteAllBytes(path, key);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
    }

    /// <summary>The key source a volume with these features needs (null when not encrypted).</summary>
    public VolumeKeySource? KeyFor(VolumeFeatures? features) => features is { Encrypted: true } ? Key : null;

    public async Task ReopenAsync()
    {
        await Pool.DisposeAsync();
        Pool = Pool.Open(MetadataDir, Options());
    }

    public async ValueTask DisposeAsync()
    {
        try { await Pool.DisposeAsync(); } catch (ObjectDisposedException) { }
        Directory.Delete(Root, recursive: true);
    }

    public static byte[] Pattern(int blocks, int seed)
    {
        var data = new byte[blocks * PoolLayout.BlockSize];
        new Random(seed).NextBytes(data);
        return data;
    }

    public static async Task<byte[]> ReadAsync(IBlockDevice device, long lba, int blocks)
    {
        var buffer = new byte[blocks * PoolLayout.BlockSize];
        Assert.Equal(BlockStatus.Success, await device.ReadAsync(lba, buffer));
        return buffer;
    }
}
