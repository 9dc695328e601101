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

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<BlockStatus> ReadPiecesAsync(long offset, Memory<byte> buffer)
    {
        BlockStatus status = BlockStatus.Success;
        for (int done = 0; status == BlockStatus.Success && done < buffer.Length;)
        {
            int inUnit = (int)(offset % _unit);
            int length = Math.Min(_unit - inUnit, buffer.Length - done);
            status = await ReadPieceAsync(offset / _unit, inUnit, buffer.Slice(done, length)).ConfigureAwait(false);
            offset += length;
            done += length;
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
