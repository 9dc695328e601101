namespace EdgeBlock.Storage.Qos;

/// <summary>
/// One volume's share of its <see cref="QosScheduler"/>: its limits, its weight, its group and the I/Os it holds
/// back. Every export of the volume uses the same flow, so limits apply to all of them together.
/// </summary>
public sealed class QosFlow
{
    private volatile bool _throttled;
    private int _queued;

    internal QosFlow(QosScheduler scheduler, QosGroup? group)
    {
        Scheduler = scheduler;
        Group = group;
    }

    public QosScheduler Scheduler { get; }
    public QosGroup? Group { get; }

    /// <summary>False when nothing limits or weighs this flow: I/O then goes straight to the device, no lock, no count.</summary>
    public bool Throttled => _throttled;

    public QosLimits Limits => Limiter?.Limits ?? QosLimits.None;

    /// <summary>Its share of a saturated pool relative to the other flows' (0: not set, counts as 1).</summary>
    public int Weight { get; internal set; }

    /// <summary>I/Os waiting for their turn (limit or share) now.</summary>
    public int QueueDepth => Volatile.Read(ref _queued);

    /// <summary>Seconds during which at least one I/O of this flow waited.</summary>
    public double ThrottledSeconds => Scheduler.ThrottledSeconds(this);

    /// <summary>Waits (asynchronously, never failing) until an I/O of <paramref name="bytes"/> may start; pair with <see cref="Complete"/>.</summary>
    public ValueTask<bool> AdmitAsync(int bytes) => Scheduler.Admit(this, bytes);

    /// <summary>An admitted I/O finished: its place in the pool goes to the next one.</summary>
    public void Complete() => Scheduler.Complete();

    // ---- the scheduler's state, changed under its lock ----
    internal QosLimiter? Limiter;
    internal readonly Queue<QosWaiter> Waiting = new();
    internal double LastFinish;
    internal long WaitingSince;
    internal long ThrottledTicks;

    internal int Queued
    {
        get => _queued;
        set => Volatile.Write(ref _queued, value);
    }

    internal void SetThrottled(bool weighted) => _throttled = weighted || Limiter != null || Group?.Limiter != null;
}

/// <summary>A group (tenant) of a pool: its limits cap the sum of its volumes' I/O.</summary>
public sealed class QosGroup
{
    internal QosLimiter? Limiter;

    public QosLimits Limits => Limiter?.Limits ?? QosLimits.None;
}
