using EdgeBlock.Storage;

namespace EdgeBlock.Volumes.Tests;

/// <summary>Alone: these tests count the process's managed allocations, which parallel tests would add to.</summary>
[CollectionDefinition(nameof(MapMemoryTests), DisableParallelization = true)]
public sealed class MapMemoryCollection;

/// <summary>A thin volume's map costs memory for what is written, not for the volume's size (issue I).</summary>
[Collection(nameof(MapMemoryTests))]
public class MapMemoryTests
{
    private const long HundredTiB = 100L << 40;
    private const int Extent = 1 << 20; // the daemon's default

    [Theory]
    [InlineData("none")]
    [InlineData("checksum")]
    public async Task Create_100TiBVolumeInA64MiBPool_AllocatesLessThan1MiB(string features)
    {
        await using TestPool t = await TestPool.CreateAsync(drives: 2, driveBytes: 33 << 20, extentSize: Extent);
        await t.Pool.CreateVolumeAsync("warm", 1 << 20, features: Features.Parse(features)); // JIT and first commit out of the count

        long before = GC.GetTotalAllocatedBytes(precise: true);
        await t.Pool.CreateVolumeAsync("huge", HundredTiB, features: Features.Parse(features));
        long allocated = GC.GetTotalAllocatedBytes(precise: true) - before;

        // Was 800 MiB: one 8-byte slot per 1 MiB extent of the size.
        Assert.True(allocated < 1 << 20, $"creating a 100 TiB volume allocated {allocated} bytes");
        Assert.True(t.Pool.GetVolume("huge").MapBytes < 64 << 10, $"map of an unwritten 100 TiB volume: {t.Pool.GetVolume("huge").MapBytes} bytes");
    }

    [Theory]
    [InlineData("none")]
    [InlineData("checksum")]
    public async Task Write_NBlocksSpreadOver100TiB_MapGrowsWithN_AndDiscardGivesItBack(string features)
    {
        await using TestPool t = await TestPool.CreateAsync(drives: 2, driveBytes: 80 << 20, extentSize: Extent);
        await t.Pool.CreateVolumeAsync("huge", HundredTiB, features: Features.Parse(features));
        long empty = t.Pool.GetVolume("huge").MapBytes;
        await using IBlockDevice dev = t.Pool.OpenVolume("huge");
        long stride = HundredTiB / PoolLayout.BlockSize / 128;

        async Task<long> WriteAsync(int from, int to)
        {
            for (int i = from; i < to; i++) Assert.Equal(BlockStatus.Success, await dev.WriteAsync(i * stride + i, TestPool.Pattern(1, i), false));
            return t.Pool.GetVolume("huge").MapBytes - empty;
        }
        long after32 = await WriteAsync(0, 32);
        long after128 = await WriteAsync(32, 128);

        // Each far-apart write costs its entry (an extent's, or a group of chunks) and at most two pages of the map.
        long perWrite = features == "none" ? ExtentMapEntry.BytesFor(Extent) : ChunkGroup.BytesFor(Extent / ChunkLayout.ChunkSize);
        long most = perWrite + 2L * SparseMap<ExtentMapEntry>.PageBytes;
        Assert.InRange(after32, 32 * perWrite, 32 * most);
        Assert.InRange(after128, 128 * perWrite, 128 * most);
        Assert.InRange(after128, 3 * after32, 5 * after32); // 4× the writes, about 4× the memory
        for (int i = 0; i < 128; i++) Assert.Equal(TestPool.Pattern(1, i), await ReadAsync(dev, i * stride + i));

        // One discard of the whole 100 TiB (as mkfs does): it visits what is mapped, not 100 Mi extents.
        Assert.Equal(BlockStatus.Success, await dev.DeallocateAsync(0, dev.BlockCount).AsTask().WaitAsync(TimeSpan.FromSeconds(30)));

        // Extents without a valid block leave the map, and their pages with them; chunk groups
        // without a mapped chunk once the commit that unmaps them is durable.
        Assert.Equal(BlockStatus.Success, await dev.FlushAsync());
        if (features != "none") Assert.Equal(128, await t.Pool.FreeEmptyGroupsAsync());
        Assert.Equal(empty, t.Pool.GetVolume("huge").MapBytes);
        for (int i = 0; i < 128; i += 17) Assert.Equal(new byte[PoolLayout.BlockSize], await ReadAsync(dev, i * stride + i));
        Assert.True(t.Pool.Check().Consistent, string.Join("\n", t.Pool.Check().Problems));
    }

    private static async Task<byte[]> ReadAsync(IBlockDevice dev, long lba)
    {
        var buffer = new byte[PoolLayout.BlockSize];
        Assert.Equal(BlockStatus.Success, await dev.ReadAsync(lba, buffer));
        return buffer;
    }
}
