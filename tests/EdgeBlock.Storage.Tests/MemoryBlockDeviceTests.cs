using EdgeBlock.Storage.Tests.Support;

namespace EdgeBlock.Storage.Tests;

public sealed class MemoryBlockDeviceTests : BlockDeviceContractTests
{
    private const int Chunk = MemoryBlockDevice.ChunkSize;

    protected override IBlockDevice CreateDevice(long sizeBytes, int blockSize) => new MemoryBlockDevice(sizeBytes, blockSize);

    [Fact]
    public async Task New_AllocatesNoChunks_AndReadsDoNotAllocateThem()
    {
        await using var device = new MemoryBlockDevice(DeviceBytes);

        Assert.Equal(BlockStatus.Success, await device.ReadAsync(0, new byte[2 * Chunk]));

        Assert.Equal(0, device.AllocatedBytes);
    }

    [Fact]
    public async Task Write_AllocatesOnlyTheChunksItTouches()
    {
        await using var device = new MemoryBlockDevice(DeviceBytes);

        // One block either side of the first chunk boundary.
        Assert.Equal(BlockStatus.Success, await device.WriteAsync(Chunk / 512 - 1, new byte[1024], fua: false));

        Assert.Equal(2 * Chunk, device.AllocatedBytes);
    }

    [Theory]
    [InlineData(ZeroingCommand.Deallocate)]
    [InlineData(ZeroingCommand.WriteZeroes)]
    [InlineData(ZeroingCommand.WriteZeroesDeallocate)]
    public async Task Zeroing_WholeChunks_FreesThem_PartialChunksStay(ZeroingCommand command)
    {
        await using var device = new MemoryBlockDevice(DeviceBytes);
        Assert.Equal(BlockStatus.Success, await device.WriteAsync(0, DataPattern.Create(4 * Chunk, 0, seed: 1), fua: false));
        Assert.Equal(4 * Chunk, device.AllocatedBytes);

        // Covers the second half of chunk 0, chunks 1 and 2 whole, and one block of chunk 3.
        long lba = Chunk / 2 / 512;
        long blocks = (Chunk / 2 + 2 * Chunk + 512) / 512;
        Assert.Equal(BlockStatus.Success, await Zero(device, command, lba, blocks));

        Assert.Equal(2 * Chunk, device.AllocatedBytes);
        byte[] readBack = new byte[4 * Chunk];
        Assert.Equal(BlockStatus.Success, await device.ReadAsync(0, readBack));
        DataPattern.AssertMatches(readBack.AsSpan(0, Chunk / 2), 0, seed: 1);
        DataPattern.AssertZeroes(readBack.AsSpan(Chunk / 2, (int)blocks * 512));
        DataPattern.AssertMatches(readBack.AsSpan(3 * Chunk + 512), 3 * Chunk + 512, seed: 1);
    }

    [Fact]
    public async Task Deallocate_ShortLastChunk_FreesIt()
    {
        // 1.5 chunks: the last chunk holds only 32 KiB.
        await using var device = new MemoryBlockDevice(Chunk + Chunk / 2);
        long lastChunkLba = Chunk / 512;
        Assert.Equal(BlockStatus.Success, await device.WriteAsync(lastChunkLba, new byte[Chunk / 2], fua: false));
        Assert.Equal(Chunk, device.AllocatedBytes);

        Assert.Equal(BlockStatus.Success, await device.DeallocateAsync(lastChunkLba, device.BlockCount - lastChunkLba));

        Assert.Equal(0, device.AllocatedBytes);
    }

    [Fact]
    public async Task Dispose_ReleasesAllChunks()
    {
        var device = new MemoryBlockDevice(DeviceBytes);
        Assert.Equal(BlockStatus.Success, await device.WriteAsync(0, new byte[2 * Chunk], fua: false));

        await device.DisposeAsync();

        Assert.Equal(0, device.AllocatedBytes);
    }

    [Fact]
    public async Task ConcurrentWriters_SameFreshChunk_AllocateItOnce()
    {
        await using var device = new MemoryBlockDevice(64L * Chunk);
        using var start = new Barrier(8);

        // Eight threads write different blocks of each fresh chunk at the same moment.
        await Task.WhenAll(Enumerable.Range(0, 8).Select(writer => Task.Run(async () =>
        {
            byte[] block = DataPattern.Create(512, 0, seed: (byte)writer);
            start.SignalAndWait();
            for (long chunk = 0; chunk < 64; chunk++)
            {
                Assert.Equal(BlockStatus.Success, await device.WriteAsync(chunk * Chunk / 512 + writer, block, fua: false));
            }
        })));

        Assert.Equal(64L * Chunk, device.AllocatedBytes);
        byte[] readBack = new byte[8 * 512];
        for (long chunk = 0; chunk < 64; chunk++)
        {
            Assert.Equal(BlockStatus.Success, await device.ReadAsync(chunk * Chunk / 512, readBack));
            for (int writer = 0; writer < 8; writer++)
            {
                DataPattern.AssertMatches(readBack.AsSpan(writer * 512, 512), 0, seed: (byte)writer);
            }
        }
    }

    [Theory]
    [InlineData(0, 512)]
    [InlineData(1000, 512)]
    [InlineData(4096, 1024 + 512)]
    [InlineData(4096, 256)]
    public void New_InvalidGeometry_Throws(long sizeBytes, int blockSize)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new MemoryBlockDevice(sizeBytes, blockSize));
    }
}
