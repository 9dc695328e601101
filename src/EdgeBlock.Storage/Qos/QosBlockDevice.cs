using System.Runtime.CompilerServices;

namespace EdgeBlock.Storage.Qos;

/// <summary>
/// A device whose I/O passes its volume's <see cref="QosFlow"/>: while the flow is throttled each command waits for
/// its turn (asynchronously; it is never failed), runs, and then gives its place back. While nothing limits or
/// weighs the flow a command goes straight to the inner device: one volatile read, no lock, no allocation.
/// </summary>
public sealed class QosBlockDevice(IBlockDevice inner, QosFlow flow) : IBlockDevice
{
    public IBlockDevice Inner => inner;
    public QosFlow Flow => flow;

    public int BlockSize => inner.BlockSize;
    public long BlockCount => inner.BlockCount;
    public bool SupportsDeallocate => inner.SupportsDeallocate;

    public ValueTask<BlockStatus> ReadAsync(long lba, Memory<byte> buffer) =>
        flow.Throttled ? Throttled(new Read(lba, buffer)) : inner.ReadAsync(lba, buffer);

    public ValueTask<BlockStatus> WriteAsync(long lba, ReadOnlyMemory<byte> data, bool fua) =>
        flow.Throttled ? Throttled(new Write(lba, data, fua)) : inner.WriteAsync(lba, data, fua);

    public ValueTask<BlockStatus> FlushAsync() => flow.Throttled ? Throttled(new Flush()) : inner.FlushAsync();

    public ValueTask<BlockStatus> WriteZeroesAsync(long lba, long blockCount, bool deallocate) =>
        flow.Throttled ? Throttled(new WriteZeroes(lba, blockCount, deallocate)) : inner.WriteZeroesAsync(lba, blockCount, deallocate);

    public ValueTask<BlockStatus> DeallocateAsync(long lba, long blockCount) =>
        flow.Throttled ? Throttled(new Deallocate(lba, blockCount)) : inner.DeallocateAsync(lba, blockCount);

    public ValueTask DisposeAsync() => inner.DisposeAsync();

    // One generic path over struct operations: the state machine is pooled, so a throttled command allocates nothing either.
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<BlockStatus> Throttled<TOperation>(TOperation operation) where TOperation : struct, IOperation
    {
        await flow.AdmitAsync(operation.Bytes).ConfigureAwait(false);
        try
        {
            return await operation.Run(inner).ConfigureAwait(false);
        }
        finally
        {
            flow.Complete();
        }
    }

    private interface IOperation
    {
        int Bytes { get; }
        ValueTask<BlockStatus> Run(IBlockDevice device);
    }

    private readonly struct Read(long lba, Memory<byte> buffer) : IOperation
    {
        public int Bytes => buffer.Length;
        public ValueTask<BlockStatus> Run(IBlockDevice device) => device.ReadAsync(lba, buffer);
    }

    private readonly struct Write(long lba, ReadOnlyMemory<byte> data, bool fua) : IOperation
    {
        public int Bytes => data.Length;
        public ValueTask<BlockStatus> Run(IBlockDevice device) => device.WriteAsync(lba, data, fua);
    }

    private readonly struct Flush : IOperation
    {
        public int Bytes => 0;
        public ValueTask<BlockStatus> Run(IBlockDevice device) => device.FlushAsync();
    }

    private readonly struct WriteZeroes(long lba, long blockCount, bool deallocate) : IOperation
    {
        public int Bytes => 0;
        public ValueTask<BlockStatus> Run(IBlockDevice device) => device.WriteZeroesAsync(lba, blockCount, deallocate);
    }

    private readonly struct Deallocate(long lba, long blockCount) : IOperation
    {
        public int Bytes => 0;
        public ValueTask<BlockStatus> Run(IBlockDevice device) => device.DeallocateAsync(lba, blockCount);
    }
}
