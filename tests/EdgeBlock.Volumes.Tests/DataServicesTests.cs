using System.Text;
using EdgeBlock.Storage;

namespace EdgeBlock.Volumes.Tests;

/// <summary>Volumes with compression and checksums: space, bit rot, reclaim of overwritten chunks, quotas.</summary>
public class DataServicesTests
{
    private const int Block = PoolLayout.BlockSize;
    private const int ChunkBlocks = ChunkLayout.BlocksPerChunk;

    /// <summary>Text-like data: words from a small vocabulary, as logs and source files are.</summary>
    internal static byte[] Text(int bytes, int seed)
    {
        string[] words = ["storage", "volume", "block", "edge", "write", "read", "chunk", "the", "of", "and", "pool", "drive", "2026-12-07", "INFO", "error=0"];
        var random = new Random(seed);
        var text = new StringBuilder(bytes + 32);
        while (text.Length < bytes) text.Append(words[random.Next(words.Length)]).Append(random.Next(8) == 0 ? '\n' : ' ');
        return Encoding.ASCII.GetBytes(text.ToString(0, bytes));
    }

    [Theory]
    [InlineData("lz4")]
    [InlineData("zstd")]
    [InlineData("lz4+checksum")]
    public async Task CompressibleData_OnACompressedVolume_TakesLessSpace_AndReadsBackAfterReopen(string features)
    {
        await using TestPool t = await TestPool.CreateAsync();
        await t.Pool.CreateVolumeAsync("v", 1 << 20, features: Features.Parse(features));
        byte[] data = Text(1 << 20, 1);
        await using (IBlockDevice dev = t.Pool.OpenVolume("v"))
        {
            Assert.Equal(BlockStatus.Success, await dev.WriteAsync(0, data, fua: false));
            Assert.Equal(BlockStatus.Success, await dev.FlushAsync());
        }
        VolumeInfo info = t.Pool.GetVolume("v");
        Assert.Equal(1 << 20, info.LogicalBytes);
        Assert.True(info.CompressionRatio > 1.5, $"ratio {info.CompressionRatio:F2} ({info.PhysicalBytes} physical bytes)");
        await t.ReopenAsync();
        Assert.Equal(info.PhysicalBytes, t.Pool.GetVolume("v").PhysicalBytes);
        await using IBlockDevice again = t.Pool.OpenVolume("v");
        Assert.Equal(data, await TestPool.ReadAsync(again, 0, data.Length / Block));
        Assert.True(t.Pool.Check().Consistent, string.Join("\n", t.Pool.Check().Problems));
    }

    [Fact]
    public async Task IncompressibleData_IsStoredRaw_AndNeverTakesMoreThanItsSize()
    {
        await using TestPool t = await TestPool.CreateAsync();
        await t.Pool.CreateVolumeAsync("v", 1 << 20, features: Features.Parse("zstd+checksum"));
        await using IBlockDevice dev = t.Pool.OpenVolume("v");
        byte[] data = TestPool.Pattern(256, seed: 7);
        Assert.Equal(BlockStatus.Success, await dev.WriteAsync(0, data, fua: false));
        VolumeInfo info = t.Pool.GetVolume("v");
        Assert.Equal(info.LogicalBytes, info.PhysicalBytes);
        Assert.True(t.Pool.ChunkAt("v", 3).Location.Codec == ChunkCodecKind.Raw);
        Assert.Equal(data, await TestPool.ReadAsync(dev, 0, 256));
    }

    [Fact]
    public async Task ZeroWritesAndDiscards_UnmapChunks_AndFreeTheirSpace()
    {
        await using TestPool t = await TestPool.CreateAsync();
        await t.Pool.CreateVolumeAsync("v", 1 << 20, features: Features.Parse("checksum"));
        await using IBlockDevice dev = t.Pool.OpenVolume("v");
        Assert.Equal(BlockStatus.Success, await dev.WriteAsync(0, TestPool.Pattern(64, 1), fua: false));
        Assert.Equal(16L * ChunkLayout.ChunkSize, t.Pool.GetVolume("v").PhysicalBytes);
        Assert.Equal(BlockStatus.Success, await dev.WriteAsync(0, new byte[ChunkLayout.ChunkSize], fua: false)); // chunk 0 zeroed
        Assert.Equal(BlockStatus.Success, await dev.DeallocateAsync(ChunkBlocks, 2 * ChunkBlocks)); // chunks 1, 2
        Assert.Equal(BlockStatus.Success, await dev.DeallocateAsync(3 * ChunkBlocks + 1, 2)); // part of chunk 3
        Assert.Equal(13L * ChunkLayout.ChunkSize, t.Pool.GetVolume("v").PhysicalBytes);
        byte[] read = await TestPool.ReadAsync(dev, 0, 4 * ChunkBlocks);
        byte[] written = TestPool.Pattern(64, 1);
        Assert.True(read.AsSpan(0, 3 * ChunkBlocks * Block).IndexOfAnyExcept((byte)0) < 0);
        Assert.True(read.AsSpan((3 * ChunkBlocks + 1) * Block, 2 * Block).IndexOfAnyExcept((byte)0) < 0);
        foreach (int lba in new[] { 3 * ChunkBlocks, 3 * ChunkBlocks + 3 })
        {
            Assert.Equal(written.AsSpan(lba * Block, Block).ToArray(), read.AsSpan(lba * Block, Block).ToArray());
        }
        Assert.Equal(BlockStatus.Success, await dev.FlushAsync());
        Assert.Equal(BlockStatus.Success, await dev.FlushAsync());
        Assert.True(t.Pool.Check().Consistent, string.Join("\n", t.Pool.Check().Problems));
    }

    [Theory]
    [InlineData("checksum")]
    [InlineData("lz4+checksum")]
    public async Task FlippedBit_InAStoredChunk_FailsReadsOfExactlyThatChunksLbas_AndIsCounted(string features)
    {
        await using TestPool t = await TestPool.CreateAsync();
        await t.Pool.CreateVolumeAsync("v", 1 << 20, features: Features.Parse(features));
        byte[] data = features.Contains("lz4") ? Text(8 * ChunkLayout.ChunkSize, 3) : TestPool.Pattern(8 * ChunkBlocks, 3);
        await using IBlockDevice dev = t.Pool.OpenVolume("v");
        Assert.Equal(BlockStatus.Success, await dev.WriteAsync(0, data, fua: false));
        Assert.Equal(BlockStatus.Success, await dev.FlushAsync());

        var (place, _) = t.Pool.ChunkAt("v", 3);
        t.Drives[t.DrivePath(place.Drive)].FlipBit(PoolLayout.DataOffset + place.Sector * ChunkLayout.SectorSize + place.Length / 2, 5);

        var buffer = new byte[Block];
        for (int lba = 0; lba < 8 * ChunkBlocks; lba++)
        {
            BlockStatus status = await dev.ReadAsync(lba, buffer);
            bool affected = lba / ChunkBlocks == 3;
            Assert.True(status == (affected ? BlockStatus.ReadError : BlockStatus.Success), $"LBA {lba}: {status}");
            if (!affected) Assert.Equal(data.AsSpan(lba * Block, Block).ToArray(), buffer);
        }
        // A read across the bad chunk fails as a whole and hands back no bytes of it.
        var whole = new byte[8 * ChunkLayout.ChunkSize];
        Assert.Equal(BlockStatus.ReadError, await dev.ReadAsync(0, whole));
        Assert.True(whole.AsSpan(3 * ChunkLayout.ChunkSize, ChunkLayout.ChunkSize).IndexOfAnyExcept((byte)0) < 0);
        Assert.Equal(ChunkBlocks + 1, t.Pool.GetVolume("v").ChecksumErrors);
        Assert.Equal(ChunkBlocks + 1, t.Pool.Info().Counters.ChecksumErrors);
        // A partial write into the bad chunk cannot merge with it; a whole-chunk write replaces it.
        Assert.Equal(BlockStatus.ReadError, await dev.WriteAsync(3 * ChunkBlocks, new byte[Block], fua: false));
        Assert.Equal(BlockStatus.Success, await dev.WriteAsync(3 * ChunkBlocks, data.AsSpan(3 * ChunkLayout.ChunkSize, ChunkLayout.ChunkSize).ToArray(), fua: false));
        Assert.Equal(data, await TestPool.ReadAsync(dev, 0, 8 * ChunkBlocks));
    }

    /// <summary>Redirect-on-write must give overwritten space back: 10 overwrites of the volume fit in a pool 3.5× its size.</summary>
    [Theory]
    [InlineData("checksum")]
    [InlineData("lz4+checksum")]
    public async Task Overwrites_TenTimesOver_UseNoMoreThanTheVolumeSizePlusBoundedSlack(string features)
    {
        // 2 drives × 7 MiB of extents = 14 MiB; the volume is 4 MiB; 40 MiB are written.
        await using TestPool t = await TestPool.CreateAsync(drives: 2, driveBytes: 8 << 20, selfManaging: true);
        const int VolumeBytes = 4 << 20;
        await t.Pool.CreateVolumeAsync("v", VolumeBytes, features: Features.Parse(features));
        await using IBlockDevice dev = t.Pool.OpenVolume("v");
        var random = new Random(11);
        long peak = 0;
        int blocks = VolumeBytes / Block;
        for (int pass = 0; pass < 10; pass++)
        {
            // Each pass rewrites every block once, in random-sized pieces; mixed compressible/incompressible.
            for (int lba = 0; lba < blocks;)
            {
                int count = Math.Min(blocks - lba, 1 + random.Next(12));
                byte[] data = random.Next(2) == 0 ? Text(count * Block, random.Next()) : TestPool.Pattern(count, random.Next());
                Assert.Equal(BlockStatus.Success, await dev.WriteAsync(lba, data, fua: false));
                lba += count;
                if (random.Next(64) == 0) Assert.Equal(BlockStatus.Success, await dev.FlushAsync());
                peak = Math.Max(peak, t.Pool.Info().AllocatedBytes);
            }
        }
        Assert.Equal(BlockStatus.Success, await dev.FlushAsync());
        Assert.Equal(BlockStatus.Success, await dev.FlushAsync());
        long before = t.Pool.Info().AllocatedBytes;
        while (await t.Pool.CompactAsync() < 0) await Task.Delay(10); // one of ours, after any in the background
        Assert.True(t.Pool.Check().Consistent, string.Join("\n", t.Pool.Check().Problems));
        // Between flushes, replaced chunks hold space until the commit the pool starts (or a writer
        // waits for), holes until the compactor runs (in the background: how soon depends on the
        // machine). Every one of the 40 MiB of writes succeeded in a 14 MiB pool; the peak stays
        // well inside it.
        Assert.True(peak <= 3L * VolumeBytes, $"peak {peak} bytes allocated for a {VolumeBytes}-byte volume");
        Assert.Equal(BlockStatus.Success, await dev.FlushAsync());
        long allocated = t.Pool.Info().AllocatedBytes;
        long stored = t.Pool.GetVolume("v").PhysicalBytes;
        // Slack: containers at least half full after compaction.
        Assert.True(allocated <= Math.Max(stored * 2, stored + 2 * TestPool.Extent), $"{allocated} bytes allocated for {stored} stored after 10 overwrites of a {VolumeBytes}-byte volume (before compaction: {before}; peak {peak})");
        Assert.True(allocated <= VolumeBytes + VolumeBytes / 8, $"{allocated} bytes allocated after 10 overwrites of a {VolumeBytes}-byte volume (before compaction: {before}; peak {peak})");
        Assert.True(t.Pool.Check().Consistent, string.Join("\n", t.Pool.Check().Problems));
        // Between flushes, replaced chunks hold space until the commit the pool starts (or a writer
        // waits for), holes until the compactor runs (in the background: how soon depends on the
        // machine). Every one of the 40 MiB of writes succeeded in a 14 MiB pool; the peak stays
        // well inside it.
        Assert.True(peak <= 3L * VolumeBytes, $"peak {peak} bytes allocated for a {VolumeBytes}-byte volume");
    }

    [Fact]
    public async Task SnapshotsAndClones_OfAChunkVolume_ShareChunks_AndGiveAllSpaceBackWhenDeleted()
    {
        await using TestPool t = await TestPool.CreateAsync();
        await t.Pool.CreateVolumeAsync("v", 1 << 20, features: Features.Parse("lz4+checksum"));
        byte[] first = Text(1 << 20, 1), second = TestPool.Pattern(64, 2);
        await using (IBlockDevice dev = t.Pool.OpenVolume("v"))
        {
            Assert.Equal(BlockStatus.Success, await dev.WriteAsync(0, first, fua: false));
            await t.Pool.SnapshotAsync("v", "s");
            long shared = t.Pool.Info().AllocatedBytes;
            await t.Pool.CloneAsync("v@s", "c");
            Assert.Equal(shared, t.Pool.Info().AllocatedBytes); // a clone copies no data
            Assert.Equal(BlockStatus.Success, await dev.WriteAsync(0, second, fua: false));
            Assert.Equal(second, await TestPool.ReadAsync(dev, 0, 64));
        }
        await using (IBlockDevice snap = t.Pool.OpenSnapshotForReading("v@s"))
        {
            Assert.Equal(first, await TestPool.ReadAsync(snap, 0, 256));
        }
        Assert.Equal(t.Pool.GetVolume("v@s").CompressionRatio, t.Pool.GetVolume("c").CompressionRatio);
        foreach (string name in new[] { "v@s", "v", "c" })
        {
            await t.Pool.DeleteVolumeAsync(name);
            Assert.True(t.Pool.Check().Consistent, string.Join("\n", t.Pool.Check().Problems));
        }
        await t.Pool.CommitAsync();
        await t.Pool.CommitAsync();
        Assert.Equal(0, t.Pool.Info().AllocatedBytes);
        Assert.Equal(0, t.Pool.Info().FreeingBytes);
    }

    [Fact]
    public async Task GroupQuota_CountsStoredBytes_SoCompressedDataFitsWhereRawDataDoesNot()
    {
        await using TestPool t = await TestPool.CreateAsync();
        await t.Pool.SetGroupQuotaAsync("t", 256 << 10);
        await t.Pool.CreateVolumeAsync("text", 1 << 20, group: "t", features: Features.Parse("lz4"));
        await t.Pool.CreateVolumeAsync("raw", 1 << 20, group: "t", features: Features.Parse("checksum"));
        await using IBlockDevice text = t.Pool.OpenVolume("text");
        await using IBlockDevice raw = t.Pool.OpenVolume("raw");
        // 256 KiB of text stored compressed takes well under the 256 KiB quota.
        Assert.Equal(BlockStatus.Success, await text.WriteAsync(0, Text(256 << 10, 5), fua: false));
        long used = t.Pool.ListGroups().Single().UsedBytes;
        Assert.Equal(t.Pool.GetVolume("text").PhysicalBytes, used);
        int chunks = 0;
        BlockStatus status;
        while ((status = await raw.WriteAsync(chunks * ChunkBlocks, TestPool.Pattern(ChunkBlocks, chunks + 1), fua: false)) == BlockStatus.Success) chunks++;
        Assert.Equal(BlockStatus.CapacityExceeded, status);
        Assert.Equal((int)(((256 << 10) - used) / ChunkLayout.ChunkSize), chunks);
        Assert.True(t.Pool.ListGroups().Single().UsedBytes <= 256 << 10);
        // Overwriting in place needs no more than it frees... once the old chunk is released.
        Assert.Equal(BlockStatus.Success, await raw.DeallocateAsync(0, ChunkBlocks));
        Assert.Equal(BlockStatus.Success, await raw.WriteAsync(chunks * ChunkBlocks, TestPool.Pattern(ChunkBlocks, 99), fua: false));
        Assert.True(t.Pool.Check().Consistent, string.Join("\n", t.Pool.Check().Problems));
    }
}
