using EdgeBlock.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeBlock.Volumes;

/// <summary>A drive to put into a pool: a block device or file; a missing file is created with SizeBytes.</summary>
public sealed record PoolDriveSpec(string Path, long? SizeBytes = null);

/// <summary>How a pool opens its drives and how often it commits on its own.</summary>
public sealed class PoolOptions
{
    /// <summary>Opens a drive: (path, size in bytes or 0 for the existing size) → device with 4 KiB blocks.</summary>
    /// Size 0 on a missing path throws <see cref="FileNotFoundException"/> (a drive that went away).
    public Func<string, long, IBlockDevice> OpenDrive { get; init; } = (path, size) =>
        size == 0 && !File.Exists(path) ? throw new FileNotFoundException($"{path} does not exist", path) : FileBlockDevice.Open(path, size, PoolLayout.BlockSize);

    /// <summary>Extent size for a new pool (a power of two, 64 KiB .. 64 MiB).</summary>
    public int ExtentSize { get; init; } = PoolLayout.DefaultExtentSize;

    /// <summary>
    /// Metadata changes not yet made durable by a host Flush are committed after this long at
    /// the latest, which also bounds how long freed space takes to become reusable.
    /// Zero turns the background commit off (tests drive commits themselves).
    /// </summary>
    public TimeSpan CommitInterval { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// How often at most the pool compacts chunk containers on its own (moving live chunks out
    /// of sparse ones so overwritten space goes back to the pool). Zero turns it off (tests
    /// compact explicitly).
    /// </summary>
    public TimeSpan CompactInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Commit early when a volume's overwritten chunks (freed only by a commit) add up to a
    /// sixteenth of the pool. Off in tests that must be the only ones to commit.
    /// </summary>
    public bool CommitOnFreedSpace { get; init; } = true;

    public ILogger Logger { get; init; } = NullLogger.Instance;

    /// <summary>
    /// Opens an attached volume's origin again after the pool opened (the daemon's image adapter), checked against
    /// its record: a missing or changed origin throws a <see cref="VolumeException"/> naming why, and that volume stays
    /// closed. Null: such volumes cannot be opened.
    /// </summary>
    public Func<VolumeOriginRecord, IVolumeOrigin>? OpenOrigin { get; init; }
}
