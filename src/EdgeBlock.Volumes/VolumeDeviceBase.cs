using System.Runtime.CompilerServices;
using EdgeBlock.Storage;

namespace EdgeBlock.Volumes;

/// <summary>
/// What the two kinds of volume device share: geometry, the closed state, flush (a pool
/// commit) and reads split into pieces that each lie in one unit of the store (an extent or
/// a chunk) — most reads lie in one, and then take no loop and one async layer less.
/// </summary>
internal abstract class VolumeDeviceBase : IBlockDevice
{
    private readonly BlockGeometry _geometry;
    private readonly int _unit;
    private int _disposed;

    protected VolumeDeviceBase(Pool pool, Volume volume, int unit)
    {
        Pool = pool;
        Volume = volume;
        _unit = unit;
        _geometry = new BlockGeometry(volume.Record.SizeBytes, PoolLayout.BlockSize);
    }

    protected Pool Pool { get; }
    protected Volume Volume { get; }
    protected BlockGeometry Geometry => _geometry;

    public int BlockSize => PoolLayout.BlockSize;
    public long BlockCount => _geometry.BlockCount;
    public bool SupportsDeallocate => true;

    /// <summary>Reads the part of unit index at offset inUnit into destination (which ends inside that unit).</summary>
    protected abstract ValueTask<BlockStatus> ReadPieceAsync(long index, int inUnit, Memory<byte> destination);

    public ValueTask<BlockStatus> ReadAsync(long lba, Memory<byte> buffer)
    {
        BlockStatus status = Check(_geometry.CheckTransfer(lba, buffer.Length));
        if (status != BlockStatus.Success) return new ValueTask<BlockStatus>(status);
        long offset = lba * PoolLayout.BlockSize;
        int inUnit = (int)(offset % _unit);
        return inUnit + buffer.Length <= _unit
            ? ReadPieceAsync(offset / _unit, inUnit, buffer)
            : ReadPiecesAsync(offset, buffer);
    }

    /// <summary>The pieces of one command that spans units run at once, this many at a time (128 KiB is 8 chunks).</summary>
    protected const int PiecesInFlight = 8;

    /// <summary>The pieces of a command in flight (a field of the command's state machine: nothing allocated).</summary>
    [InlineArray(PiecesInFlight)]
    protected struct PieceTasks
    {
        private ValueTask<BlockStatus> _first;
    }

    /// <summary>Awaits the first count pieces (every one of them, so none is left running); the first failure wins.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    protected static async ValueTask<BlockStatus> AwaitPiecesAsync(PieceTasks pieces, int count)
    {
        BlockStatus status = BlockStatus.Success;
        for (int k = 0; k < count; k++)
        {
            BlockStatus piece = await pieces[k].ConfigureAwait(false);
            if (status == BlockStatus.Success) status = piece;
        }
        return status;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<BlockStatus> ReadPiecesAsync(long offset, Memory<byte> buffer)
    {
        BlockStatus status = BlockStatus.Success;
        PieceTasks pieces = default;
        for (int done = 0, count = 0; status == BlockStatus.Success && done < buffer.Length; count = 0)
        {
            // Drives serve the pieces in parallel; one after the other, a command would wait for each in turn.
            for (; count < PiecesInFlight && done < buffer.Length; count++)
            {
                int inUnit = (int)(offset % _unit);
                int length = Math.Min(_unit - inUnit, buffer.Length - done);
                pieces[count] = ReadPieceAsync(offset / _unit, inUnit, buffer.Slice(done, length));
                offset += length;
                done += length;
            }
            status = await AwaitPiecesAsync(pieces, count).ConfigureAwait(false);
        }
        return status;
    }

    public abstract ValueTask<BlockStatus> WriteAsync(long lba, ReadOnlyMemory<byte> data, bool fua);

    public abstract ValueTask<BlockStatus> DeallocateAsync(long lba, long blockCount);

    public ValueTask<BlockStatus> WriteZeroesAsync(long lba, long blockCount, bool deallocate) => DeallocateAsync(lba, blockCount);

    public ValueTask<BlockStatus> FlushAsync() =>
        Volatile.Read(ref _disposed) != 0 ? new(BlockStatus.NotReady) : Pool.CommitAsync();

    protected BlockStatus Check(BlockStatus range) => Volatile.Read(ref _disposed) != 0 ? BlockStatus.NotReady : range;

    public ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0) Pool.CloseVolume(Volume);
        return ValueTask.CompletedTask;
    }
}
