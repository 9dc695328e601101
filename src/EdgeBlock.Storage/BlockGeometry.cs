using System.Diagnostics;
using System.Numerics;

namespace EdgeBlock.Storage;

/// <summary>
/// Block size and count of a device, and the range checks every device repeats before I/O.
/// The target validates commands first; these checks are the devices' safety net.
/// </summary>
public readonly record struct BlockGeometry
{
    public const int MinBlockSize = 512;
    public const int MaxBlockSize = 64 * 1024;

    public BlockGeometry(long sizeBytes, int blockSize)
    {
        if (blockSize < MinBlockSize || blockSize > MaxBlockSize || !BitOperations.IsPow2(blockSize))
        {
            throw new ArgumentOutOfRangeException(nameof(blockSize), blockSize,
                $"Block size must be a power of two between {MinBlockSize} and {MaxBlockSize} bytes (usually 512 or 4096).");
        }
        if (sizeBytes <= 0 || sizeBytes % blockSize != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(sizeBytes), sizeBytes,
                $"Device size must be a positive multiple of the block size ({blockSize} bytes).");
        }
        BlockSize = blockSize;
        BlockCount = sizeBytes / blockSize;
    }

    public int BlockSize { get; }

    public long BlockCount { get; }

    public long SizeBytes => BlockCount * BlockSize;

    /// <summary>Checks that blockCount blocks starting at lba lie on the device.</summary>
    public BlockStatus CheckRange(long lba, long blockCount) =>
        lba >= 0 && blockCount >= 0 && lba <= BlockCount - blockCount ? BlockStatus.Success : BlockStatus.OutOfRange;

    /// <summary>Checks a data transfer: whole blocks, all on the device.</summary>
    public BlockStatus CheckTransfer(long lba, int lengthBytes)
    {
        Debug.Assert(lengthBytes % BlockSize == 0, $"Transfer of {lengthBytes} bytes is not a multiple of the {BlockSize}-byte block size.");
        if (lengthBytes % BlockSize != 0)
        {
            return BlockStatus.InternalError;
        }
        return CheckRange(lba, lengthBytes / BlockSize);
    }
}
