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
            ZeroFill(buffer.Span);
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

    /// <summary>
    /// Makes the buffer all zeroes, writing only where it is not already. A target reuses its buffers, so for a
    /// read-only load they are zero from the last read: a vectorized scan reads the memory without dirtying it
    /// (no write-back, and the kernel's copy for the send finds it in the cache), where a clear would rewrite
    /// every byte. Any leftover data (a previous write's payload) is still cleared, from its first non-zero byte.
    /// </summary>
    internal static void ZeroFill(Span<byte> buffer)
    {
        int dirty = buffer.IndexOfAnyExcept((byte)0);
        if (dirty >= 0)
        {
            buffer[dirty..].Clear();
        }
    }

    private BlockStatus CheckTransfer(long lba, int lengthBytes) =>
        _disposed ? BlockStatus.NotReady : _geometry.CheckTransfer(lba, lengthBytes);

    private BlockStatus CheckRange(long lba, long blockCount) =>
        _disposed ? BlockStatus.NotReady : _geometry.CheckRange(lba, blockCount);
}
