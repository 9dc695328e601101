using EdgeBlock.Storage;

namespace EdgeBlock.VhostServe;

/// <summary>
/// Adds a fixed latency to reads and writes (--latency-ms), so tests can have requests in flight
/// in the back-end when they kill it: under TCG the guest, not the device, is the bottleneck, and
/// a plain file completes everything long before the guest looks.
/// </summary>
internal sealed class LatencyBlockDevice(IBlockDevice inner, TimeSpan latency) : IBlockDevice
{
    public int BlockSize => inner.BlockSize;
    public long BlockCount => inner.BlockCount;
    public bool SupportsDeallocate => inner.SupportsDeallocate;

    public async ValueTask<BlockStatus> ReadAsync(long lba, Memory<byte> buffer)
    {
        await Task.Delay(latency).ConfigureAwait(false);
        return await inner.ReadAsync(lba, buffer).ConfigureAwait(false);
    }

    public async ValueTask<BlockStatus> WriteAsync(long lba, ReadOnlyMemory<byte> data, bool fua)
    {
        await Task.Delay(latency).ConfigureAwait(false);
        return await inner.WriteAsync(lba, data, fua).ConfigureAwait(false);
    }

    public ValueTask<BlockStatus> FlushAsync() => inner.FlushAsync();
    public ValueTask<BlockStatus> WriteZeroesAsync(long lba, long blockCount, bool deallocate) => inner.WriteZeroesAsync(lba, blockCount, deallocate);
    public ValueTask<BlockStatus> DeallocateAsync(long lba, long blockCount) => inner.DeallocateAsync(lba, blockCount);
    // The file device belongs to whoever opened it.
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
