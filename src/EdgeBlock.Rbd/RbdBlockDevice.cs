using EdgeBlock.Storage;
using Microsoft.Extensions.ObjectPool;

namespace EdgeBlock.Rbd;

/// <summary>
/// An <see cref="IBlockDevice"/> over an open RBD image, in 4 KiB blocks (as pool volumes): every call is
/// one librbd aio call. Flush is rbd_aio_flush — librbd's write-back cache is on by default, so a completed
/// Flush (or FUA write, which is a write then a flush) means the data is in the cluster. Deallocate is
/// rbd_aio_discard (with rbd_skip_partial_discard off, so discarded blocks read as zeroes), Write Zeroes is
/// rbd_aio_write_zeroes. Unless it owns the image, the image's owner closes both, the device first.
/// </summary>
public sealed class RbdBlockDevice : IBlockDevice
{
    public const int DefaultBlockSize = 4096;

    /// <summary>Deeper than any queue we expect to serve; beyond it operations are made and freed.</summary>
    internal const int MaxPooledOperations = 1024;

    private readonly RbdImage _image;
    private readonly bool _ownsImage;
    private long _blockCount;
    private long _errors;
    private long _timeouts;

    /// <param name="ownsImage">Whether disposing the device also closes the image (an export that opened it for itself).</param>
    public RbdBlockDevice(RbdImage image, int blockSize = DefaultBlockSize, bool ownsImage = false)
    {
        if (blockSize is not (512 or 4096))
        {
            throw new ArgumentOutOfRangeException(nameof(blockSize), blockSize, "block size must be 512 or 4096");
        }
        _image = image;
        _ownsImage = ownsImage;
        BlockSize = blockSize;
        _blockCount = image.Size / blockSize;
        Operations = new DefaultObjectPoolProvider { MaximumRetained = MaxPooledOperations }.Create(new RbdOperationPolicy(this));
    }

    public RbdImage Image => _image;

    public int BlockSize { get; }

    public long BlockCount => Volatile.Read(ref _blockCount);

    public bool SupportsDeallocate => true;

    /// <summary>I/Os that completed with an error, and of those the ones the cluster did not answer in time.</summary>
    public long Errors => Interlocked.Read(ref _errors);

    public long Timeouts => Interlocked.Read(ref _timeouts);

    internal ObjectPool<RbdOperation> Operations { get; }

    internal nint ImageHandle => _image.Handle;

    /// <summary>Re-reads the image size after a resize.</summary>
    public void RefreshSize() => Volatile.Write(ref _blockCount, _image.Size / BlockSize);

    public ValueTask<BlockStatus> ReadAsync(long lba, Memory<byte> buffer) =>
        Start(RbdOperationKind.Read, lba, buffer.Length, buffer, fua: false);

    public ValueTask<BlockStatus> WriteAsync(long lba, ReadOnlyMemory<byte> data, bool fua) =>
        Start(RbdOperationKind.Write, lba, data.Length, System.Runtime.InteropServices.MemoryMarshal.AsMemory(data), fua);

    public ValueTask<BlockStatus> FlushAsync() =>
        Operations.Get().Start(RbdOperationKind.Flush, 0, 0, default, flushAfter: false);

    public ValueTask<BlockStatus> WriteZeroesAsync(long lba, long blockCount, bool deallocate) =>
        StartRange(RbdOperationKind.WriteZeroes, lba, blockCount);

    public ValueTask<BlockStatus> DeallocateAsync(long lba, long blockCount) =>
        StartRange(RbdOperationKind.Discard, lba, blockCount);

    private ValueTask<BlockStatus> StartRange(RbdOperationKind kind, long lba, long blockCount)
    {
        if (blockCount > int.MaxValue / BlockSize)
        {
            return ValueTask.FromResult(BlockStatus.OutOfRange);
        }
        return Start(kind, lba, (int)blockCount * BlockSize, default, fua: false);
    }

    private ValueTask<BlockStatus> Start(RbdOperationKind kind, long lba, int length, Memory<byte> buffer, bool fua)
    {
        if (length % BlockSize != 0 || lba < 0 || lba > BlockCount || length / BlockSize > BlockCount - lba)
        {
            return ValueTask.FromResult(length % BlockSize != 0 ? BlockStatus.InternalError : BlockStatus.OutOfRange);
        }
        if (length == 0)
        {
            return ValueTask.FromResult(BlockStatus.Success);
        }
        return Operations.Get().Start(kind, lba * BlockSize, length, buffer, fua);
    }

    internal void CountCompletion(BlockStatus status)
    {
        if (status != BlockStatus.Success)
        {
            Interlocked.Increment(ref _errors);
            if (status == BlockStatus.NotReady)
            {
                Interlocked.Increment(ref _timeouts);
            }
        }
    }

    /// <summary>Flushes what librbd still caches; then closes the image if it owns it (which releases the exclusive lock).</summary>
    public async ValueTask DisposeAsync()
    {
        await FlushAsync().ConfigureAwait(false);
        (Operations as IDisposable)?.Dispose();
        if (_ownsImage)
        {
            _image.Dispose();
        }
    }
}
