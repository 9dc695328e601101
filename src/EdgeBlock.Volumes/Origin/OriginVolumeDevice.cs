using System.Runtime.CompilerServices;
using EdgeBlock.Storage;

namespace EdgeBlock.Volumes;

/// <summary>
/// A volume with an attached origin, as a block device: reads of resolved blocks go to the volume, the others to the
/// origin (read through, no copy on read: the background copy moves them); writes and discards go to the volume and
/// then resolve their blocks, under the 1 MiB unit's stripe that the copy also holds while it moves a unit, so the
/// copy never lays origin bytes over what the guest wrote. A partial write into a chunk not yet copied is no problem:
/// only its own blocks become resolved, the rest of the chunk still reads from the origin. Once the copy is done and
/// the origin dropped, everything passes straight through (one volatile read).
/// </summary>
internal sealed class OriginVolumeDevice(Pool pool, OriginState origin, IBlockDevice inner) : IBlockDevice
{
    private const int Block = PoolLayout.BlockSize;

    public int BlockSize => inner.BlockSize;
    public long BlockCount => inner.BlockCount;
    public bool SupportsDeallocate => true;

    /// <summary>Whether the range may involve the origin; anything else (done, out of range: the volume refuses it) goes straight through.</summary>
    private bool Involved(long lba, long blocks) =>
        !origin.Done && lba >= 0 && blocks > 0 && lba < origin.Blocks && blocks <= BlockCount - lba && !origin.AllResolved(lba, blocks);

    public ValueTask<BlockStatus> ReadAsync(long lba, Memory<byte> buffer) =>
        buffer.Length % Block == 0 && Involved(lba, buffer.Length / Block) ? ReadThroughAsync(lba, buffer) : inner.ReadAsync(lba, buffer);

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<BlockStatus> ReadThroughAsync(long lba, Memory<byte> buffer)
    {
        // Counted before the bits are looked at: the origin is closed only once no read can still be using it.
        Interlocked.Increment(ref origin.Reads);
        try
        {
            long blocks = buffer.Length / Block;
            for (long done = 0; done < blocks;)
            {
                long n = origin.Run(lba + done, blocks - done, out bool resolved);
                Memory<byte> part = buffer.Slice((int)(done * Block), (int)(n * Block));
                BlockStatus status = resolved ? await inner.ReadAsync(lba + done, part).ConfigureAwait(false)
                    : await origin.Source!.ReadAsync((lba + done) * Block, part).ConfigureAwait(false);
                if (status != BlockStatus.Success) return status;
                done += n;
            }
            return BlockStatus.Success;
        }
        finally
        {
            Interlocked.Decrement(ref origin.Reads);
        }
    }

    public ValueTask<BlockStatus> WriteAsync(long lba, ReadOnlyMemory<byte> data, bool fua) =>
        data.Length % Block == 0 && Involved(lba, data.Length / Block) ? ResolveAsync(lba, data.Length / Block, data, fua) : inner.WriteAsync(lba, data, fua);

    public ValueTask<BlockStatus> DeallocateAsync(long lba, long blockCount) =>
        Involved(lba, blockCount) ? ResolveAsync(lba, blockCount, null, fua: false) : inner.DeallocateAsync(lba, blockCount);

    /// <summary>Discarded or zeroed blocks read as zeroes from the volume, never from the origin again.</summary>
    public ValueTask<BlockStatus> WriteZeroesAsync(long lba, long blockCount, bool deallocate) => DeallocateAsync(lba, blockCount);

    public ValueTask<BlockStatus> FlushAsync() => inner.FlushAsync();

    /// <summary>Writes (data) or discards (null) unit by unit, each under its stripe, and resolves what succeeded.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<BlockStatus> ResolveAsync(long lba, long blocks, ReadOnlyMemory<byte>? data, bool fua)
    {
        BlockStatus status = BlockStatus.Success;
        for (long done = 0; status == BlockStatus.Success && done < blocks;)
        {
            long block = lba + done;
            long n = Math.Min(blocks - done, OriginState.UnitBlocks - block % OriginState.UnitBlocks);
            SemaphoreSlim stripe = origin.StripeOf(block);
            await stripe.WaitAsync().ConfigureAwait(false);
            try
            {
                status = data is { } bytes
                    ? await inner.WriteAsync(block, bytes.Slice((int)(done * Block), (int)(n * Block)), fua: false).ConfigureAwait(false)
                    : await inner.DeallocateAsync(block, n).ConfigureAwait(false);
                if (status == BlockStatus.Success) origin.Resolve(block, n);
            }
            finally
            {
                stripe.Release();
            }
            done += n;
        }
        // FUA: the data and the bits that say to read it from the volume are durable together.
        if (status == BlockStatus.Success && fua) status = await pool.CommitAsync().ConfigureAwait(false);
        return status;
    }

    public ValueTask DisposeAsync() => inner.DisposeAsync();
}
