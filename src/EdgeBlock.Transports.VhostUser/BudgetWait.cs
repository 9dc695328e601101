using EdgeBlock.Storage;

namespace EdgeBlock.Transports.VhostUser;

/// <summary>
/// A virtqueue's thread waiting for the memory budget (<see cref="DataBufferPool"/>): it blocks, so the queue takes
/// no more requests off the ring until buffers come back. Bounce buffers go back when their request completes, on
/// device threads, so the wait always ends.
/// </summary>
internal sealed class BudgetWait : IBufferWaiter
{
    private readonly ManualResetEventSlim _returned = new();

    public AlignedBuffer Rent(DataBufferPool pool, int length)
    {
        while (true)
        {
            _returned.Reset();
            pool.AddWaiter(this);
            if (pool.TryRent(length, 0, out var buffer)) return buffer;
            _returned.Wait();
        }
    }

    public void OnBuffersReturned() => _returned.Set();
}
