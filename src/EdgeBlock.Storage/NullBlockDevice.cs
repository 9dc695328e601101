namespace EdgeBlock.Storage;

/// <summary>
/// A device that stores nothing, like Linux null_blk: reads return zeroes, writes are
/// dropped, everything completes at once. For measuring the target and transports alone.
/// </summary>
public sealed class NullBlockDevice : IBlockDevice
{
    private readonly BlockGeometry _geometry;
    private volatile bool _disposed;

    public NullBlockDevice(long sizeBytes, int blockSize = 512)
    {
        _geometry = new BlockGeometry(sizeBytes, blockSize);
    }

    public int BlockSize => _geometry.BlockSize;

    public long BlockCount => _geometry.BlockCount;

    /// <summary>Every block reads as zeroes already, so deallocation keeps its promise trivially.</summary>
    public bool SupportsDeallocate => true;

    public ValueTask<BlockStatus> ReadAsync(long lba, Memory<byte> buffer)
    {
        BlockStatus status = CheckTransfer(lba, buffer.Length);
        if (status == BlockStatus.Success)
        {
            buffer.Span.Clear();
        }
        return new ValueTask<BlockStatus>(status);
    }

    public ValueTask<BlockStatus> WriteAsync(long lba, ReadOnlyMemory<byte> data, bool fua) =>
        new(CheckTransfer(lba, data.Length));

    public ValueTask<BlockStatus> FlushAsync() =>
        new(_disposed ? BlockStatus.NotReady : BlockStatus.Success);

    public ValueTask<BlockStatus> WriteZeroesAsync(long lba, long blockCount, bool deallocate) =>
        new(CheckRange(lba, blockCount));

    public ValueTask<BlockStatus> DeallocateAsync(long lba, long blockCount) =>
        new(CheckRange(lba, blockCount));

    public ValueTask DisposeAsync()
    {
        _disposed = true;
        return ValueTask.CompletedTask;
    }

    private BlockStatus CheckTransfer(long lba, int lengthBytes) =>
        _disposed ? BlockStatus.NotReady : _geometry.CheckTransfer(lba, lengthBytes);

    private BlockStatus CheckRange(long lba, long blockCount) =>
        _disposed ? BlockStatus.NotReady : _geometry.CheckRange(lba, blockCount);
}
