using EdgeBlock.Storage;

namespace EdgeBlock.Daemon.Pools;

/// <summary>
/// A volume opened for a namespace or vhost export. Forwards every call to the pool's volume device;
/// disposing it ends the export. <see cref="Detached"/> is set once nothing routes commands to it any
/// more (its namespace or export was removed; the commands still inside drain, then it closes:
/// <see cref="Management.DeviceTeardown"/>): deleting or resizing the volume then waits for it to close
/// instead of being refused.
/// </summary>
public sealed class VolumeExport : IBlockDevice
{
    private readonly IBlockDevice _inner;
    private readonly Action<VolumeExport> _onClosed;
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _disposed;

    internal VolumeExport(IBlockDevice inner, string pool, string volume, Guid uuid, Action<VolumeExport> onClosed)
    {
        _inner = inner;
        Pool = pool;
        Volume = volume;
        Uuid = uuid;
        _onClosed = onClosed;
    }

    public string Pool { get; }
    public string Volume { get; }
    public Guid Uuid { get; }
    public string Key => $"{Pool}/{Volume}";

    /// <summary>The device the export forwards to (its QoS wrapper over the pool's volume device).</summary>
    internal IBlockDevice Inner => _inner;

    /// <summary>No namespace routes new commands here; only commands in flight remain.</summary>
    public bool Detached { get; set; }

    /// <summary>Completes when the export is closed (disposed).</summary>
    public Task Closed => _closed.Task;

    public int BlockSize => _inner.BlockSize;
    public long BlockCount => _inner.BlockCount;
    public bool SupportsDeallocate => _inner.SupportsDeallocate;

    public ValueTask<BlockStatus> ReadAsync(long lba, Memory<byte> buffer) => _inner.ReadAsync(lba, buffer);
    public ValueTask<BlockStatus> WriteAsync(long lba, ReadOnlyMemory<byte> data, bool fua) => _inner.WriteAsync(lba, data, fua);
    public ValueTask<BlockStatus> FlushAsync() => _inner.FlushAsync();
    public ValueTask<BlockStatus> WriteZeroesAsync(long lba, long blockCount, bool deallocate) => _inner.WriteZeroesAsync(lba, blockCount, deallocate);
    public ValueTask<BlockStatus> DeallocateAsync(long lba, long blockCount) => _inner.DeallocateAsync(lba, blockCount);

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        try
        {
            await _inner.DisposeAsync().ConfigureAwait(false);
        }
        finally
        {
            _onClosed(this);
            _closed.TrySetResult();
        }
    }
}
