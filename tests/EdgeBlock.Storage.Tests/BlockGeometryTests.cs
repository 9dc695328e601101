namespace EdgeBlock.Storage.Tests;

public sealed class BlockGeometryTests
{
    private readonly BlockGeometry _geometry = new(sizeBytes: 100 * 512, blockSize: 512);

    [Theory]
    [InlineData(0, 100)]
    [InlineData(99, 1)]
    [InlineData(100, 0)]
    [InlineData(50, 0)]
    public void CheckRange_InsideDevice_Succeeds(long lba, long blockCount)
    {
        Assert.Equal(BlockStatus.Success, _geometry.CheckRange(lba, blockCount));
    }

    [Theory]
    [InlineData(100, 1)]
    [InlineData(99, 2)]
    [InlineData(0, 101)]
    [InlineData(-1, 1)]
    [InlineData(1, -1)]
    [InlineData(long.MaxValue, 1)]
    [InlineData(1, long.MaxValue)]
    [InlineData(long.MinValue, 1)]
    public void CheckRange_OutsideDevice_ReturnsOutOfRange(long lba, long blockCount)
    {
        Assert.Equal(BlockStatus.OutOfRange, _geometry.CheckRange(lba, blockCount));
    }

    [Fact]
    public void CheckTransfer_WholeBlocks_ChecksTheirRange()
    {
        Assert.Equal(BlockStatus.Success, _geometry.CheckTransfer(98, 1024));
        Assert.Equal(BlockStatus.OutOfRange, _geometry.CheckTransfer(99, 1024));
    }

    [Theory]
    [InlineData(4096, 4096, 1)]
    [InlineData(1L << 40, 512, 1L << 31)]
    [InlineData(65536, 65536, 1)]
    public void New_ValidGeometry_CountsBlocks(long sizeBytes, int blockSize, long blockCount)
    {
        var geometry = new BlockGeometry(sizeBytes, blockSize);

        Assert.Equal(blockCount, geometry.BlockCount);
        Assert.Equal(sizeBytes, geometry.SizeBytes);
    }

    [Theory]
    [InlineData(4096, 256)]    // below 512
    [InlineData(4096, 1536)]   // not a power of two
    [InlineData(1L << 20, 131072)] // above 64 KiB
    [InlineData(0, 512)]
    [InlineData(-512, 512)]
    [InlineData(4096 + 512, 4096)] // not whole blocks
    public void New_InvalidGeometry_Throws(long sizeBytes, int blockSize)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new BlockGeometry(sizeBytes, blockSize));
    }
}
