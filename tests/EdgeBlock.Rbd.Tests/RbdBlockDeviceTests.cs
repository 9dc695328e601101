using EdgeBlock.Rbd.Tests.Support;
using EdgeBlock.Storage;

namespace EdgeBlock.Rbd.Tests;

[Collection(CephCollection.Name)]
public sealed class RbdBlockDeviceTests(CephTestCluster ceph)
{
    private static byte[] Pattern(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    [CephFact]
    public async Task Write_ThenRead_ReturnsTheData()
    {
        await using OpenedImage opened = OpenedImage.Create(ceph);
        RbdBlockDevice device = opened.Device;
        byte[] data = Pattern(128 << 10, 1);

        Assert.Equal(BlockStatus.Success, await device.WriteAsync(1000, data, fua: false));
        var back = new byte[data.Length];
        Assert.Equal(BlockStatus.Success, await device.ReadAsync(1000, back));

        Assert.Equal(data, back);
        Assert.Equal((64L << 20) / 4096, device.BlockCount);
    }

    [CephFact]
    public async Task Flush_AfterWrites_DataIsReadByAFreshClient()
    {
        await using OpenedImage opened = OpenedImage.Create(ceph, sizeBytes: 8 << 20);
        byte[] data = Pattern(64 << 10, 2);
        // Enough writes that librbd's cache (write-back once a flush was seen) holds some when we flush.
        Assert.Equal(BlockStatus.Success, await opened.Device.FlushAsync());
        for (int i = 0; i < 16; i++)
        {
            Assert.Equal(BlockStatus.Success, await opened.Device.WriteAsync(i * 16L, data, fua: false));
        }

        Assert.Equal(BlockStatus.Success, await opened.Device.FlushAsync());

        // rbd export is another librbd client in another process: it sees what the cluster has, not our cache.
        byte[] image = ceph.Export(opened.Image.Spec);
        for (int i = 0; i < 16; i++)
        {
            Assert.True(image.AsSpan(i * (64 << 10), 64 << 10).SequenceEqual(data), $"write {i} is not in the cluster after Flush");
        }
    }

    [CephFact]
    public async Task FuaWrite_Completed_DataIsReadByAFreshClient()
    {
        await using OpenedImage opened = OpenedImage.Create(ceph, sizeBytes: 4 << 20);
        Assert.Equal(BlockStatus.Success, await opened.Device.FlushAsync()); // cache now write-back
        byte[] data = Pattern(4096, 3);

        Assert.Equal(BlockStatus.Success, await opened.Device.WriteAsync(5, data, fua: true));

        Assert.Equal(data, ceph.Export(opened.Image.Spec).AsSpan(5 * 4096, 4096).ToArray());
    }

    [CephFact]
    public async Task Deallocate_PartOfAnObject_ReadsZeroes()
    {
        await using OpenedImage opened = OpenedImage.Create(ceph);
        byte[] data = Pattern(64 << 10, 4);
        Assert.Equal(BlockStatus.Success, await opened.Device.WriteAsync(0, data, fua: false));

        // Blocks 3..5 lie inside the first 4 MiB object: librbd's default would skip such a partial discard.
        Assert.Equal(BlockStatus.Success, await opened.Device.DeallocateAsync(3, 3));

        var back = new byte[data.Length];
        Assert.Equal(BlockStatus.Success, await opened.Device.ReadAsync(0, back));
        Assert.True(back.AsSpan(3 * 4096, 3 * 4096).IndexOfAnyExcept((byte)0) < 0, "deallocated blocks are not zeroes");
        Assert.Equal(data.AsSpan(0, 3 * 4096).ToArray(), back.AsSpan(0, 3 * 4096).ToArray());
        Assert.Equal(data.AsSpan(6 * 4096).ToArray(), back.AsSpan(6 * 4096).ToArray());
    }

    [CephFact]
    public async Task WriteZeroes_Range_ReadsZeroesAndKeepsTheRest()
    {
        await using OpenedImage opened = OpenedImage.Create(ceph);
        byte[] data = Pattern(32 << 10, 5);
        Assert.Equal(BlockStatus.Success, await opened.Device.WriteAsync(10, data, fua: false));

        Assert.Equal(BlockStatus.Success, await opened.Device.WriteZeroesAsync(12, 2, deallocate: false));

        var back = new byte[data.Length];
        Assert.Equal(BlockStatus.Success, await opened.Device.ReadAsync(10, back));
        Assert.True(back.AsSpan(2 * 4096, 2 * 4096).IndexOfAnyExcept((byte)0) < 0);
        Assert.Equal(data.AsSpan(4 * 4096).ToArray(), back.AsSpan(4 * 4096).ToArray());
    }

    [CephFact]
    public async Task Read_PastTheLastBlock_IsOutOfRange()
    {
        await using OpenedImage opened = OpenedImage.Create(ceph, sizeBytes: 1 << 20);

        Assert.Equal(BlockStatus.OutOfRange, await opened.Device.ReadAsync(255, new byte[8192]));
        Assert.Equal(BlockStatus.OutOfRange, await opened.Device.WriteZeroesAsync(256, 1, deallocate: true));
    }

    [CephFact]
    public async Task Resize_Grown_RefreshSizeShowsTheNewBlockCount()
    {
        await using OpenedImage opened = OpenedImage.Create(ceph, sizeBytes: 1 << 20);

        opened.Image.Resize(2 << 20);
        opened.Device.RefreshSize();

        Assert.Equal(512, opened.Device.BlockCount);
        Assert.Equal(BlockStatus.Success, await opened.Device.WriteAsync(511, new byte[4096], fua: false));
    }

    [CephFact]
    public async Task ConcurrentIo_ManyInFlight_AllCompleteWithTheirData()
    {
        await using OpenedImage opened = OpenedImage.Create(ceph);
        var writes = new Task<BlockStatus>[64];
        for (int i = 0; i < writes.Length; i++)
        {
            writes[i] = opened.Device.WriteAsync(i * 3L, Pattern(4096, 100 + i), fua: false).AsTask();
        }
        Assert.All(await Task.WhenAll(writes), s => Assert.Equal(BlockStatus.Success, s));

        var buffers = new byte[64][];
        var reads = new Task<BlockStatus>[64];
        for (int i = 0; i < reads.Length; i++)
        {
            buffers[i] = new byte[4096];
            reads[i] = opened.Device.ReadAsync(i * 3L, buffers[i]).AsTask();
        }
        Assert.All(await Task.WhenAll(reads), s => Assert.Equal(BlockStatus.Success, s));
        for (int i = 0; i < buffers.Length; i++)
        {
            Assert.Equal(Pattern(4096, 100 + i), buffers[i]);
        }
    }
}
