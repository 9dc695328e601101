using EdgeBlock.Storage;

namespace EdgeBlock.Target.Tests.Support;

/// <summary>Passes every call to an inner device and counts what reached it (FUA writes, flushes, deallocations).</summary>
public sealed class RecordingBlockDevice(IBlockDevice inner) : IBlockDevice
{
    private long _writes, _fuaWrites, _flushes, _writeZeroes, _deallocates, _reads;

    public IBlockDevice Inner => inner;
    public long Reads => Interlocked.Read(ref _reads);
    public long Writes => Interlocked.Read(ref _writes);
    public long FuaWrites => Interlocked.Read(ref _fuaWrites);
    public long Flushes => Interlocked.Read(ref _flushes);
    public long WriteZeroesCalls => Interlocked.Read(ref _writeZeroes);
    public long Deallocates => Interlocked.Read(ref _deallocates);

    public int BlockSize => inner.BlockSize;
    public long BlockCount => inner.BlockCount;
    public bool SupportsDeallocate => inner.SupportsDeallocate;

    public ValueTask<BlockStatus> ReadAsync(long lba, Memory<byte> buffer)
    {
        Interlocked.Increment(ref _reads);
        return inner.ReadAsync(lba, buffer);
    }

    public ValueTask<BlockStatus> WriteAsync(long lba, ReadOnlyMemory<byte> data, bool fua)
    {
        Interlocked.Increment(ref _writes);
        if (fua) Interlocked.Increment(ref _fuaWrites);
        return inner.WriteAsync(lba, data, fua);
    }

    /// <summary>When set, flushes wait for this task before reaching the inner device (a slow disk cache).</summary>
    public Task? FlushGate { get; set; }

    public ValueTask<BlockStatus> FlushAsync()
    {
        Interlocked.Increment(ref _flushes);
        return FlushGate is { } gate ? FlushAfterAsync(gate) : inner.FlushAsync();
    }

    private async ValueTask<BlockStatus> FlushAfterAsync(Task gate)
    {
        await gate.ConfigureAwait(false);
        return await inner.FlushAsync().ConfigureAwait(false);
    }

    public ValueTask<BlockStatus> WriteZeroesAsync(long lba, long blockCount, bool deallocate)
    {
        Interlocked.Increment(ref _writeZeroes);
        return inner.WriteZeroesAsync(lba, blockCount, deallocate);
    }

    public ValueTask<BlockStatus> DeallocateAsync(long lba, long blockCount)
    {
        Interlocked.Increment(ref _deallocates);
        return inner.DeallocateAsync(lba, blockCount);
    }

    public ValueTask DisposeAsync() => inner.DisposeAsync();
}
