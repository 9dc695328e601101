namespace EdgeBlock.Storage;

/// <summary>
/// Outcome of a block operation. Media and space problems are values, never exceptions:
/// the target maps them to NVMe status codes in one place (StatusMapping).
/// </summary>
public enum BlockStatus : byte
{
    Success = 0,
    /// <summary>The range lies (partly) beyond the device's last block.</summary>
    OutOfRange,
    /// <summary>Reading failed (EIO and friends).</summary>
    ReadError,
    /// <summary>Writing failed (EIO and friends).</summary>
    WriteError,
    /// <summary>No space for the write (ENOSPC, quota).</summary>
    CapacityExceeded,
    /// <summary>The device is closed or not yet ready.</summary>
    NotReady,
    /// <summary>The operation is not supported by this device.</summary>
    NotSupported,
    /// <summary>Any other internal failure.</summary>
    InternalError,
}

/// <summary>
/// A block device as the target sees it: fixed-size logical blocks addressed by LBA.
/// Buffers are owned by the caller until the returned ValueTask completes.
/// Implementations must be safe for concurrent calls from several queues and must not
/// throw for I/O errors (they return a <see cref="BlockStatus"/>).
/// </summary>
public interface IBlockDevice : IAsyncDisposable
{
    /// <summary>Logical block size in bytes (512 or 4096).</summary>
    int BlockSize { get; }

    /// <summary>Number of logical blocks.</summary>
    long BlockCount { get; }

    /// <summary>True when <see cref="DeallocateAsync"/> really frees space and deallocated blocks read back as zeroes.</summary>
    bool SupportsDeallocate { get; }

    /// <summary>Reads buffer.Length bytes (a multiple of BlockSize) starting at lba.</summary>
    ValueTask<BlockStatus> ReadAsync(long lba, Memory<byte> buffer);

    /// <summary>Writes data (a multiple of BlockSize) at lba. With fua the data is durable when this completes.</summary>
    ValueTask<BlockStatus> WriteAsync(long lba, ReadOnlyMemory<byte> data, bool fua);

    /// <summary>Makes every write completed before this call durable.</summary>
    ValueTask<BlockStatus> FlushAsync();

    /// <summary>Makes blockCount blocks at lba read as zeroes; with deallocate the space may also be freed.</summary>
    ValueTask<BlockStatus> WriteZeroesAsync(long lba, long blockCount, bool deallocate);

    /// <summary>Hints that blockCount blocks at lba are unused. Deallocated blocks read as zeroes afterwards.</summary>
    ValueTask<BlockStatus> DeallocateAsync(long lba, long blockCount);
}
