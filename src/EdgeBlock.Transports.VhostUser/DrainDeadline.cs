namespace EdgeBlock.Transports.VhostUser;

/// <summary>
/// When a connection's waits for requests inside the device give up. Unarmed, they wait as long
/// as it takes: a ring the front-end stops (GET_VRING_BASE, a new memory table) must drain before
/// its memory may go. Teardown arms it once, so every wait after that ends by the same moment
/// and stopping an export takes a bounded time even with a device that never answers.
/// </summary>
internal sealed class DrainDeadline
{
    private long _at = long.MaxValue;

    /// <summary>Starts the clock (the first call wins); an infinite timeout leaves it unarmed.</summary>
    public void Arm(TimeSpan timeout)
    {
        if (timeout == Timeout.InfiniteTimeSpan)
        {
            return;
        }
        long at = Environment.TickCount64 + (long)Math.Min(timeout.TotalMilliseconds, long.MaxValue / 4); // no overflow for huge timeouts
        Interlocked.CompareExchange(ref _at, at, long.MaxValue);
    }

    public bool Passed => Environment.TickCount64 >= Volatile.Read(ref _at);
}
