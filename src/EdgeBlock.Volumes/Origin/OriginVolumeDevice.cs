using System.Buffers;
using System.Runtime.CompilerServices;
using EdgeBlock.Storage;

namespace EdgeBlock.Volumes;

/// <summary>
/// A volume with an attached origin, as a block device: reads of resolved blocks go to the volume, the others to the
/// origin, and what they read from it is also put into the volume (copy-on-read, after the read completed) so hot
/// blocks stop hitting the image; writes and discards go to the volume and then resolve their blocks, under the
/// 1 MiB unit's stripe that the copy and copy-on-read also hold while they move blocks, so origin bytes are never laid
/// over what the guest wrote. A partial write into a chunk not yet copied is no problem: only its own blocks become
/// resolved, the rest of the chunk still reads from the origin. Once the copy is done and the origin dropped,
/// everything passes straight through (one volatile read).
/// </summary>
internal sealed class OriginVolumeDevice(Pool pool, OriginState origin, IBlockDevice inner) : IBlockDevice
{
    private const int Block = PoolLayout.BlockSize;

    /// <summary>
    /// Origin bytes copy-on-read may hold per origin before they are in the volume; reads past it are not copied
    /// (the background copy moves those blocks later), so a burst of guest reads never grows memory without bound.
    /// </summary>
    internal const long CopyOnReadLimitBytes = 8 << 20;

    /// <summary>Copies-on-read of this device still writing: disposing waits for them (they use the inner device).</summary>
    private int _copying;

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
                if (!resolved) CopyOnRead(lba + done, part.Span);
                done += n;
            }
            return BlockStatus.Success;
        }
        finally
        {
            Interlocked.Decrement(ref origin.Reads);
        }
    }

    /// <summary>
    /// Hands origin bytes a guest read to a background write into the volume: copied out of the guest's buffer (which
    /// is the caller's again when the read completes), never more than the read, nothing past the in-flight limit.
    /// </summary>
    private void CopyOnRead(long lba, ReadOnlySpan<byte> data)
    {
        if (Interlocked.Add(ref origin.CopyOnReadBytes, data.Length) > CopyOnReadLimitBytes)
        {
            Interlocked.Add(ref origin.CopyOnReadBytes, -data.Length);
            return;
        }
        byte[] bytes = ArrayPool<byte>.Shared.Rent(data.Length);
        data.CopyTo(bytes);
        Interlocked.Increment(ref _copying);
        _ = StoreReadAsync(lba, bytes, data.Length);
    }

    /// <summary>
    /// Puts the read blocks into the volume unit by unit, each under its stripe, writing only those still unresolved
    /// there: a guest write or the copy that got there first wins. Blocks are resolved after their write, as for guest
    /// writes, so the commit rules are the same. A failure leaves the blocks to the background copy.
    /// </summary>
    private async Task StoreReadAsync(long lba, byte[] bytes, int length)
    {
        try
        {
            await Task.Yield(); // the guest's read completes first
            long blocks = length / Block;
            for (long done = 0; done < blocks && !origin.Done;)
            {
                long unitEnd = Math.Min(blocks, done + OriginState.UnitBlocks - (lba + done) % OriginState.UnitBlocks);
                SemaphoreSlim stripe = origin.StripeOf(lba + done);
                await stripe.WaitAsync().ConfigureAwait(false);
                try
                {
                    while (done < unitEnd)
                    {
                        long n = origin.Run(lba + done, unitEnd - done, out bool resolved);
                        if (!resolved && (await Pool.StoreOriginBytesAsync(inner, lba + done,
                                bytes.AsMemory((int)(done * Block), (int)(n * Block)), data: true).ConfigureAwait(false)).Status == BlockStatus.Success)
                            origin.Resolve(lba + done, n);
                        done += n;
                    }
                }
                finally
                {
                    stripe.Release();
                }
            }
        }
        catch (Exception e) when (e is VolumeException or IOException or ObjectDisposedException)
        {
            // Not copied now: the background copy moves these blocks.
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(bytes);
            Interlocked.Add(ref origin.CopyOnReadBytes, -length);
            Interlocked.Decrement(ref _copying);
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

    public async ValueTask DisposeAsync()
    {
        while (Volatile.Read(ref _copying) != 0) await Task.Delay(1).ConfigureAwait(false);
        await inner.DisposeAsync().ConfigureAwait(false);
    }
}
