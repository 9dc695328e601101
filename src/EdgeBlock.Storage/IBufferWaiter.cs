namespace EdgeBlock.Storage;

/// <summary>
/// Someone that could not rent a data buffer (<see cref="DataBufferPool.AddWaiter"/>). Called once, on the
/// thread that returned a buffer: it should only schedule its retry, not do the I/O there.
/// </summary>
public interface IBufferWaiter
{
    void OnBuffersReturned();
}
