using EdgeBlock.Storage.Tests.Support;

namespace EdgeBlock.Storage.Tests;

public sealed class NullBlockDeviceTests
{
    private const long DeviceBytes = 1024 * 1024;

    [Theory]
    [InlineData(512)]
    [InlineData(4096)]
    public async Task Geometry_IsSizeOverBlockSize(int blockSize)
    {
        await using var device = new NullBlockDevice(DeviceBytes, blockSize);

        Assert.Equal(blockSize, device.BlockSize);
        Assert.Equal(DeviceBytes / blockSize, device.BlockCount);
        Assert.True(device.SupportsDeallocate);
    }

    [Fact]
    public async Task Read_AfterWrite_ReturnsZeroes_BecauseWritesAreDropped()
    {
        await using var device = new NullBlockDevice(DeviceBytes);
        Assert.Equal(BlockStatus.Success, await device.WriteAsync(8, DataPattern.Create(4096, 8 * 512, seed: 1), fua: true));
        byte[] buffer = new byte[4096];
        buffer.AsSpan().Fill(0xAA);

        Assert.Equal(BlockStatus.Success, await device.ReadAsync(8, buffer));

        DataPattern.AssertZeroes(buffer);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(4095)]
    [InlineData(70_000)]
    [InlineData(131_071)]
    public async Task Read_IntoAReusedBuffer_ZeroesItWhereverOldDataIs(int dirtyAt)
    {
        // The null device skips writing bytes that are already zero: a single stray byte must still go.
        await using var device = new NullBlockDevice(DeviceBytes);
        byte[] buffer = new byte[128 * 1024];
        Assert.Equal(BlockStatus.Success, await device.ReadAsync(0, buffer));
        buffer[dirtyAt] = 0x5A;

        Assert.Equal(BlockStatus.Success, await device.ReadAsync(0, buffer));

        DataPattern.AssertZeroes(buffer);
    }

    [Fact]
    public async Task Read_AfterAWritePayloadInTheSameBuffer_ReturnsZeroes()
    {
        // What a target does with one slot buffer: a write's data arrives in it, then a read reuses it.
        await using var device = new NullBlockDevice(DeviceBytes);
        using var slot = new AlignedBuffer(128 * 1024);
        Memory<byte> buffer = slot.Memory;
        DataPattern.Create(buffer.Length, 0, seed: 7).CopyTo(buffer);
        Assert.Equal(BlockStatus.Success, await device.WriteAsync(0, buffer, fua: false));

        Assert.Equal(BlockStatus.Success, await device.ReadAsync(0, buffer[..4096]));
        DataPattern.AssertZeroes(buffer.Span[..4096]);
        Assert.Equal(BlockStatus.Success, await device.ReadAsync(0, buffer));
        DataPattern.AssertZeroes(buffer.Span);
    }

    [Fact]
    public async Task Read_BeyondEnd_ReturnsOutOfRange_AndLeavesBufferAlone()
    {
        await using var device = new NullBlockDevice(DeviceBytes);
        byte[] buffer = new byte[1024];
        buffer.AsSpan().Fill(0xAA);

        Assert.Equal(BlockStatus.OutOfRange, await device.ReadAsync(device.BlockCount - 1, buffer));

        Assert.All(buffer, b => Assert.Equal(0xAA, b));
    }

    [Fact]
    public async Task WriteAndZeroing_BeyondEnd_ReturnOutOfRange()
    {
        await using var device = new NullBlockDevice(DeviceBytes);

        Assert.Equal(BlockStatus.OutOfRange, await device.WriteAsync(device.BlockCount, new byte[512], fua: false));
        Assert.Equal(BlockStatus.OutOfRange, await device.WriteZeroesAsync(device.BlockCount - 1, 2, deallocate: false));
        Assert.Equal(BlockStatus.OutOfRange, await device.DeallocateAsync(-1, 1));
    }

    [Fact]
    public async Task FlushAndZeroing_InRange_Succeed()
    {
        await using var device = new NullBlockDevice(DeviceBytes);

        Assert.Equal(BlockStatus.Success, await device.FlushAsync());
        Assert.Equal(BlockStatus.Success, await device.WriteZeroesAsync(0, device.BlockCount, deallocate: false));
        Assert.Equal(BlockStatus.Success, await device.DeallocateAsync(0, device.BlockCount));
    }

    [Fact]
    public async Task Operations_AfterDispose_ReturnNotReady()
    {
        var device = new NullBlockDevice(DeviceBytes);
        await device.DisposeAsync();

        Assert.Equal(BlockStatus.NotReady, await device.ReadAsync(0, new byte[512]));
        Assert.Equal(BlockStatus.NotReady, await device.WriteAsync(0, new byte[512], fua: false));
        Assert.Equal(BlockStatus.NotReady, await device.FlushAsync());
        Assert.Equal(BlockStatus.NotReady, await device.DeallocateAsync(0, 1));
    }

    [Fact]
    public void ReadAndWrite_AllocateNothing()
    {
        var device = new NullBlockDevice(DeviceBytes);
        using var buffer = new AlignedBuffer(4096);
        ReadAndWrite(device, buffer.Memory); // first calls may allocate while the JIT warms up

        int failures = 0;
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
        {
            failures += ReadAndWrite(device, buffer.Memory) ? 0 : 1;
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0, failures);
        Assert.Equal(0, allocated);
    }

    [Theory]
    [InlineData(0, 512)]
    [InlineData(-512, 512)]
    [InlineData(1000, 512)]
    [InlineData(4096, 3000)]
    public void New_InvalidGeometry_Throws(long sizeBytes, int blockSize)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new NullBlockDevice(sizeBytes, blockSize));
    }

    /// <summary>Checks without Assert, whose comparers allocate.</summary>
    private static bool ReadAndWrite(NullBlockDevice device, Memory<byte> buffer)
    {
        // Completed synchronously: GetResult on the completed ValueTask neither waits nor allocates.
        return device.ReadAsync(0, buffer).GetAwaiter().GetResult() == BlockStatus.Success
            && device.WriteAsync(8, buffer, fua: true).GetAwaiter().GetResult() == BlockStatus.Success;
    }
}
