using System.Runtime.CompilerServices;
using EdgeBlock.Storage;

namespace EdgeBlock.Volumes;

/// <summary>
/// A volume as a block device (what a namespace exports). 4 KiB blocks. Reads and writes to
/// extents the volume owns alone take no lock: they count themselves in the entry's InFlight
/// (so the extent is not reused under them), check the map again, and go to the drive.
/// First writes to an extent, writes to shared extents and deallocation take the slow paths
/// in <see cref="Pool"/>.
/// </summary>
internal sealed class VolumeDevice(Pool pool, Volume volume) : VolumeDeviceBase(pool, volume, pool.ExtentSize)
{
    private readonly Pool _pool = pool;
    private readonly Volume _volume = volume;
    private readonly int _extentSize = pool.ExtentSize;

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    protected override async ValueTask<BlockStatus> ReadPieceAsync(long index, int inExtent, Memory<byte> destination)
    {
        SparseMap<ExtentMapEntry> map = _volume.Map;
        while (true)
        {
            ExtentMapEntry? entry = map[index];
            if (entry is null)
            {
                destination.Span.Clear();
                return BlockStatus.Success;
            }
            Interlocked.Increment(ref entry.InFlight);
            try
            {
                if (!ReferenceEquals(map[index], entry)) continue;
                if (entry.AllValid(inExtent / PoolLayout.BlockSize, destination.Length / PoolLayout.BlockSize))
                {
                    PoolDrive drive = _pool.DriveAt(entry.Drive);
                    return await drive.Device.ReadAsync(drive.Lba(entry.Physical, inExtent), destination).ConfigureAwait(false);
                }
                return await _pool.ReadValidAsync(entry, inExtent, destination).ConfigureAwait(false);
            }
            finally
            {
                Interlocked.Decrement(ref entry.InFlight);
            }
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public override async ValueTask<BlockStatus> WriteAsync(long lba, ReadOnlyMemory<byte> data, bool fua)
    {
        BlockStatus status = Check(Geometry.CheckTransfer(lba, data.Length));
        long offset = lba * PoolLayout.BlockSize;
        int done = 0;
        bool metadataChanged = false;
        while (status == BlockStatus.Success && done < data.Length)
        {
            long index = offset / _extentSize;
            int inExtent = (int)(offset % _extentSize);
            int length = Math.Min(_extentSize - inExtent, data.Length - done);
            (status, bool changed) = await WritePieceAsync(index, inExtent, data.Slice(done, length), fua).ConfigureAwait(false);
            metadataChanged |= changed;
            offset += length;
            done += length;
        }
        // FUA promises the data is durable on completion; if finding it needs new metadata, that must be durable too.
        if (status == BlockStatus.Success && fua && metadataChanged) status = await _pool.CommitAsync().ConfigureAwait(false);
        return status;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<(BlockStatus, bool MetadataChanged)> WritePieceAsync(long index, int inExtent, ReadOnlyMemory<byte> data, bool fua)
    {
        SparseMap<ExtentMapEntry> map = _volume.Map;
        while (true)
        {
            ExtentMapEntry? entry = map[index];
            if (entry is null)
            {
                BlockStatus mapped = _pool.MapNewExtent(_volume, index);
                if (mapped != BlockStatus.Success) return (mapped, false);
                continue;
            }
            Interlocked.Increment(ref entry.InFlight);
            bool shared;
            try
            {
                if (!ReferenceEquals(map[index], entry)) continue;
                shared = _pool.IsShared(entry);
                if (!shared)
                {
                    PoolDrive drive = _pool.DriveAt(entry.Drive);
                    BlockStatus status = await drive.Device.WriteAsync(drive.Lba(entry.Physical, inExtent), data, fua).ConfigureAwait(false);
                    if (status != BlockStatus.Success) return (status, false);
                    return (BlockStatus.Success, Pool.MarkWritten(_volume, index, entry, inExtent, data.Length));
                }
            }
            finally
            {
                Interlocked.Decrement(ref entry.InFlight);
            }
            var (cowStatus, retry) = await _pool.CopyOnWriteAsync(_volume, index, inExtent, data).ConfigureAwait(false);
            if (!retry) return (cowStatus, true);
        }
    }

    /// <summary>Deallocated blocks read as zeroes at once; whole extents go back to the pool.</summary>
    public override ValueTask<BlockStatus> DeallocateAsync(long lba, long blockCount)
    {
        BlockStatus status = Check(Geometry.CheckRange(lba, blockCount));
        if (status == BlockStatus.Success) _pool.Deallocate(_volume, lba * PoolLayout.BlockSize, blockCount * PoolLayout.BlockSize);
        return new ValueTask<BlockStatus>(status);
    }
}
