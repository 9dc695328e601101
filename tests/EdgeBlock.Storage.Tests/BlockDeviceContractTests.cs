using EdgeBlock.Storage.Tests.Support;

namespace EdgeBlock.Storage.Tests;

/// <summary>
/// What every device that stores data promises through <see cref="IBlockDevice"/>. Each such
/// backend's test class derives from this one, so all of them run these tests.
/// </summary>
public abstract class BlockDeviceContractTests
{
    protected const long DeviceBytes = 1024 * 1024;

    public enum ZeroingCommand
    {
        Deallocate,
        WriteZeroes,
        WriteZeroesDeallocate,
    }

    protected abstract IBlockDevice CreateDevice(long sizeBytes, int blockSize);

    [Theory]
    [InlineData(512)]
    [InlineData(4096)]
    public async Task Geometry_IsSizeOverBlockSize(int blockSize)
    {
        await using IBlockDevice device = CreateDevice(DeviceBytes, blockSize);

        Assert.Equal(blockSize, device.BlockSize);
        Assert.Equal(DeviceBytes / blockSize, device.BlockCount);
    }

    [Theory]
    [InlineData(512)]
    [InlineData(4096)]
    public async Task Read_NeverWrittenBlocks_ReturnsZeroes(int blockSize)
    {
        await using IBlockDevice device = CreateDevice(DeviceBytes, blockSize);
        using var buffer = new AlignedBuffer(256 * 1024);
        buffer.Span.Fill(0xAA);

        Assert.Equal(BlockStatus.Success, await device.ReadAsync(1, buffer.Memory));

        DataPattern.AssertZeroes(buffer.Span);
    }

    [Theory]
    [InlineData(512)]
    [InlineData(4096)]
    public async Task Write_ThenRead_ReturnsSameData(int blockSize)
    {
        await using IBlockDevice device = CreateDevice(DeviceBytes, blockSize);
        // Starts one block short of 64 KiB so the write crosses chunk and page boundaries.
        long lba = 64 * 1024 / blockSize - 1;
        using var data = new AlignedBuffer(200 * 1024 / blockSize * blockSize);
        DataPattern.Fill(data.Span, lba * blockSize, seed: 1);
        using var readBack = new AlignedBuffer(data.Length);

        Assert.Equal(BlockStatus.Success, await device.WriteAsync(lba, data.Memory, fua: false));
        Assert.Equal(BlockStatus.Success, await device.ReadAsync(lba, readBack.Memory));

        DataPattern.AssertMatches(readBack.Span, lba * blockSize, seed: 1);
    }

    [Fact]
    public async Task Write_LeavesNeighbouringBlocksAlone()
    {
        await using IBlockDevice device = CreateDevice(DeviceBytes, 512);
        Assert.Equal(BlockStatus.Success, await device.WriteAsync(10, DataPattern.Create(512, 10 * 512, seed: 2), fua: false));
        byte[] around = new byte[3 * 512];

        Assert.Equal(BlockStatus.Success, await device.ReadAsync(9, around));

        DataPattern.AssertZeroes(around.AsSpan(0, 512));
        DataPattern.AssertMatches(around.AsSpan(512, 512), 10 * 512, seed: 2);
        DataPattern.AssertZeroes(around.AsSpan(1024, 512));
    }

    [Fact]
    public async Task Write_OverOlderData_ReadsNewestData()
    {
        await using IBlockDevice device = CreateDevice(DeviceBytes, 512);
        Assert.Equal(BlockStatus.Success, await device.WriteAsync(4, DataPattern.Create(4096, 4 * 512, seed: 3), fua: false));
        Assert.Equal(BlockStatus.Success, await device.WriteAsync(5, DataPattern.Create(512, 5 * 512, seed: 4), fua: false));
        byte[] readBack = new byte[4096];

        Assert.Equal(BlockStatus.Success, await device.ReadAsync(4, readBack));

        DataPattern.AssertMatches(readBack.AsSpan(0, 512), 4 * 512, seed: 3);
        DataPattern.AssertMatches(readBack.AsSpan(512, 512), 5 * 512, seed: 4);
        DataPattern.AssertMatches(readBack.AsSpan(1024), 6 * 512, seed: 3);
    }

    [Fact]
    public async Task Read_LastBlock_Succeeds()
    {
        await using IBlockDevice device = CreateDevice(DeviceBytes, 512);
        byte[] last = DataPattern.Create(512, DeviceBytes - 512, seed: 5);
        Assert.Equal(BlockStatus.Success, await device.WriteAsync(device.BlockCount - 1, last, fua: false));
        byte[] readBack = new byte[512];

        Assert.Equal(BlockStatus.Success, await device.ReadAsync(device.BlockCount - 1, readBack));

        Assert.Equal(last, readBack);
    }

    [Theory]
    [InlineData(0)] // starts past the end
    [InlineData(1)] // straddles the end
    public async Task Read_BeyondEnd_ReturnsOutOfRange_AndLeavesBufferAlone(int blocksBeforeEnd)
    {
        await using IBlockDevice device = CreateDevice(DeviceBytes, 512);
        byte[] buffer = new byte[2 * 512];
        buffer.AsSpan().Fill(0xAA);

        Assert.Equal(BlockStatus.OutOfRange, await device.ReadAsync(device.BlockCount - blocksBeforeEnd, buffer));

        Assert.All(buffer, b => Assert.Equal(0xAA, b));
    }

    [Fact]
    public async Task Write_StraddlingEnd_ReturnsOutOfRange_AndWritesNothing()
    {
        await using IBlockDevice device = CreateDevice(DeviceBytes, 512);

        Assert.Equal(BlockStatus.OutOfRange,
            await device.WriteAsync(device.BlockCount - 1, DataPattern.Create(1024, DeviceBytes - 512, seed: 6), fua: true));

        byte[] last = new byte[512];
        Assert.Equal(BlockStatus.Success, await device.ReadAsync(device.BlockCount - 1, last));
        DataPattern.AssertZeroes(last);
    }

    [Theory]
    [InlineData(-1L)]
    [InlineData(long.MaxValue)] // lba * block size overflows
    [InlineData(long.MinValue)]
    public async Task Transfers_AtImpossibleLba_ReturnOutOfRange(long lba)
    {
        await using IBlockDevice device = CreateDevice(DeviceBytes, 512);
        byte[] buffer = new byte[512];

        Assert.Equal(BlockStatus.OutOfRange, await device.ReadAsync(lba, buffer));
        Assert.Equal(BlockStatus.OutOfRange, await device.WriteAsync(lba, buffer, fua: false));
    }

    [Theory]
    [InlineData(ZeroingCommand.Deallocate)]
    [InlineData(ZeroingCommand.WriteZeroes)]
    [InlineData(ZeroingCommand.WriteZeroesDeallocate)]
    public async Task Zeroing_BeyondEnd_ReturnsOutOfRange_AndZeroesNothing(ZeroingCommand command)
    {
        await using IBlockDevice device = CreateDevice(DeviceBytes, 512);
        byte[] last = DataPattern.Create(512, DeviceBytes - 512, seed: 7);
        Assert.Equal(BlockStatus.Success, await device.WriteAsync(device.BlockCount - 1, last, fua: false));

        Assert.Equal(BlockStatus.OutOfRange, await Zero(device, command, device.BlockCount - 1, blockCount: 2));
        Assert.Equal(BlockStatus.OutOfRange, await Zero(device, command, -1, blockCount: 1));
        Assert.Equal(BlockStatus.OutOfRange, await Zero(device, command, 0, blockCount: long.MaxValue));

        byte[] readBack = new byte[512];
        Assert.Equal(BlockStatus.Success, await device.ReadAsync(device.BlockCount - 1, readBack));
        Assert.Equal(last, readBack);
    }

    [Theory]
    [InlineData(ZeroingCommand.Deallocate)]
    [InlineData(ZeroingCommand.WriteZeroes)]
    [InlineData(ZeroingCommand.WriteZeroesDeallocate)]
    public async Task Zeroing_WrittenRange_ReadsZeroes_AndKeepsNeighbours(ZeroingCommand command)
    {
        await using IBlockDevice device = CreateDevice(DeviceBytes, 512);
        const int WrittenBytes = 512 * 1024;
        using var data = new AlignedBuffer(WrittenBytes);
        DataPattern.Fill(data.Span, 0, seed: 8);
        Assert.Equal(BlockStatus.Success, await device.WriteAsync(0, data.Memory, fua: false));

        // Blocks 100..399: partial 64 KiB chunks and 4 KiB pages at both ends, whole ones between.
        Assert.Equal(BlockStatus.Success, await Zero(device, command, lba: 100, blockCount: 300));

        using var readBack = new AlignedBuffer(WrittenBytes);
        Assert.Equal(BlockStatus.Success, await device.ReadAsync(0, readBack.Memory));
        DataPattern.AssertMatches(readBack.Span[..(100 * 512)], 0, seed: 8);
        DataPattern.AssertZeroes(readBack.Span.Slice(100 * 512, 300 * 512));
        DataPattern.AssertMatches(readBack.Span[(400 * 512)..], 400 * 512, seed: 8);
    }

    [Fact]
    public async Task Zeroing_WholeDevice_ReadsZeroes()
    {
        await using IBlockDevice device = CreateDevice(DeviceBytes, 4096);
        using var data = new AlignedBuffer((int)DeviceBytes);
        DataPattern.Fill(data.Span, 0, seed: 9);
        Assert.Equal(BlockStatus.Success, await device.WriteAsync(0, data.Memory, fua: false));

        Assert.Equal(BlockStatus.Success, await device.DeallocateAsync(0, device.BlockCount));

        Assert.Equal(BlockStatus.Success, await device.ReadAsync(0, data.Memory));
        DataPattern.AssertZeroes(data.Span);
    }

    [Fact]
    public async Task Flush_AfterWrites_Succeeds()
    {
        await using IBlockDevice device = CreateDevice(DeviceBytes, 512);
        Assert.Equal(BlockStatus.Success, await device.WriteAsync(0, new byte[4096], fua: false));

        Assert.Equal(BlockStatus.Success, await device.FlushAsync());
    }

    [Fact]
    public async Task Write_Fua_ThenRead_ReturnsData()
    {
        await using IBlockDevice device = CreateDevice(DeviceBytes, 512);
        byte[] data = DataPattern.Create(8192, 16 * 512, seed: 10);

        Assert.Equal(BlockStatus.Success, await device.WriteAsync(16, data, fua: true));

        byte[] readBack = new byte[8192];
        Assert.Equal(BlockStatus.Success, await device.ReadAsync(16, readBack));
        Assert.Equal(data, readBack);
    }

    [Fact]
    public async Task Operations_AfterDispose_ReturnNotReady()
    {
        IBlockDevice device = CreateDevice(DeviceBytes, 512);
        await device.DisposeAsync();
        byte[] buffer = new byte[512];

        Assert.Equal(BlockStatus.NotReady, await device.ReadAsync(0, buffer));
        Assert.Equal(BlockStatus.NotReady, await device.WriteAsync(0, buffer, fua: true));
        Assert.Equal(BlockStatus.NotReady, await device.FlushAsync());
        Assert.Equal(BlockStatus.NotReady, await device.WriteZeroesAsync(0, 1, deallocate: false));
        Assert.Equal(BlockStatus.NotReady, await device.DeallocateAsync(0, 1));
    }

    [Fact]
    public async Task ConcurrentWriters_DistinctRanges_AllDataLands()
    {
        await using IBlockDevice device = CreateDevice(DeviceBytes, 512);
        const int Writers = 16;
        const int WritesPerWriter = 64;

        // Writer w owns every block lba ≡ w (mod 16): all writers share every chunk and page,
        // so chunk allocation and page-cache updates race while the data must not.
        await Task.WhenAll(Enumerable.Range(0, Writers).Select(writer => Task.Run(async () =>
        {
            byte[] data = new byte[512];
            for (int i = 0; i < WritesPerWriter; i++)
            {
                long lba = (long)i * Writers + writer;
                DataPattern.Fill(data, lba * 512, seed: 11);
                Assert.Equal(BlockStatus.Success, await device.WriteAsync(lba, data, fua: false));
            }
        })));

        byte[] readBack = new byte[Writers * WritesPerWriter * 512];
        Assert.Equal(BlockStatus.Success, await device.ReadAsync(0, readBack));
        DataPattern.AssertMatches(readBack, 0, seed: 11);
    }

    protected static ValueTask<BlockStatus> Zero(IBlockDevice device, ZeroingCommand command, long lba, long blockCount) => command switch
    {
        ZeroingCommand.Deallocate => device.DeallocateAsync(lba, blockCount),
        ZeroingCommand.WriteZeroes => device.WriteZeroesAsync(lba, blockCount, deallocate: false),
        ZeroingCommand.WriteZeroesDeallocate => device.WriteZeroesAsync(lba, blockCount, deallocate: true),
        _ => throw new ArgumentOutOfRangeException(nameof(command)),
    };
}
