namespace EdgeBlock.Storage.Qos;

/// <summary>
/// QoS of one pool: per-volume flows with token-bucket limits, groups whose limits cap their flows together, and
/// weights that share the pool when it is saturated.
/// <para>
/// Weights use start-time fair queueing (Goyal et al.): each held-back I/O gets a start tag, the later of the
/// virtual time and its flow's previous finish tag; its finish tag adds its cost divided by the flow's weight.
/// While at least one flow has a weight, at most <see cref="MaxInFlight"/> I/Os are inside the pool's drives;
/// below that nothing waits, and at it the next slot goes to the waiting I/O with the smallest start tag. So
/// backlogged flows get slots in proportion to their weights, and a flow that idles banks nothing: its next I/O
/// starts at the current virtual time, and meanwhile its share went to the busy flows. An I/O costs one unit plus
/// one per 64 KiB it moves.
/// </para>
/// <para>
/// A limited I/O waits asynchronously (no thread blocked, never failed) until its flow's and its group's buckets
/// allow it; one timer per scheduler wakes the earliest. All of that runs under the scheduler's lock, taken only
/// by flows that are <see cref="QosFlow.Throttled"/>. The clock is injected (<see cref="TimeProvider"/>): a test
/// advances it by hand and fires the timer deterministically.
/// </para>
/// </summary>
public sealed class QosScheduler : IDisposable
{
    /// <summary>I/Os inside the pool's drives while weights apply: enough to keep an SSD busy, few enough that waiting I/Os are ordered by weight.</summary>
    public const int DefaultMaxInFlight = 32;
    private const int CostBytesPerUnit = 64 * 1024;

    private readonly TimeProvider _time;
    private readonly object _lock = new();
    private readonly ITimer _timer;
    private readonly List<QosFlow> _flows = [];
    private readonly List<QosFlow> _backlogged = [];
    private readonly Queue<QosWaiter> _ready = new();
    private readonly Stack<QosWaiter> _free = new();
    private readonly int _weightedMaxInFlight;
    private int _maxInFlight = int.MaxValue;
    private int _inFlight;
    private double _virtualTime;
    private long _timerDue = long.MaxValue;
    private bool _disposed;

    [ThreadStatic] private static QosScheduler? t_releasing; // the scheduler whose ready I/Os this thread is letting go

    public QosScheduler(TimeProvider time, int maxInFlight = DefaultMaxInFlight)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxInFlight, 1);
        _time = time;
        _weightedMaxInFlight = maxInFlight;
        _timer = time.CreateTimer(static s => ((QosScheduler)s!).OnTimer(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>I/Os admitted and not completed (counted only for throttled flows).</summary>
    public int InFlight
    {
        get { lock (_lock) return _inFlight; }
    }

    /// <summary>The in-flight cap in force: <see cref="DefaultMaxInFlight"/> (or the constructor's) once a flow has a weight, else none.</summary>
    public int MaxInFlight
    {
        get { lock (_lock) return _maxInFlight; }
    }

    public QosGroup CreateGroup() => new();

    public QosFlow CreateFlow(QosGroup? group = null)
    {
        var flow = new QosFlow(this, group);
        lock (_lock)
        {
            _flows.Add(flow);
            flow.SetThrottled(_maxInFlight != int.MaxValue);
        }
        return flow;
    }

    /// <summary>Forgets a flow (its volume is gone); I/Os it still holds back are let go.</summary>
    public void RemoveFlow(QosFlow flow)
    {
        lock (_lock)
        {
            _flows.Remove(flow);
            flow.Limiter = null;
            flow.Weight = 0;
            Reconfigure();
        }
        ReleaseReady();
    }

    /// <summary>Sets a flow's limits and weight (0: none); I/Os it holds back are judged again at once.</summary>
    public void Set(QosFlow flow, QosLimits limits, int weight)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(weight);
        lock (_lock)
        {
            if (flow.Limits != limits) flow.Limiter = limits.IsNone ? null : new QosLimiter(limits, _time.GetTimestamp(), _time.TimestampFrequency);
            flow.Weight = weight;
            Reconfigure();
        }
        ReleaseReady();
    }

    /// <summary>Sets a group's limits (0: none).</summary>
    public void Set(QosGroup group, QosLimits limits)
    {
        lock (_lock)
        {
            if (group.Limits != limits) group.Limiter = limits.IsNone ? null : new QosLimiter(limits, _time.GetTimestamp(), _time.TimestampFrequency);
            Reconfigure();
        }
        ReleaseReady();
    }

    private void Reconfigure()
    {
        bool weighted = false;
        foreach (QosFlow f in _flows) weighted |= f.Weight > 0;
        _maxInFlight = weighted ? _weightedMaxInFlight : int.MaxValue;
        foreach (QosFlow f in _flows) f.SetThrottled(weighted);
        Pump(_time.GetTimestamp());
    }

    internal ValueTask<bool> Admit(QosFlow flow, int bytes)
    {
        ValueTask<bool> pending;
        lock (_lock)
        {
            long now = _time.GetTimestamp();
            double start = Math.Max(_virtualTime, flow.LastFinish);
            flow.LastFinish = start + Cost(bytes) / Math.Max(1, flow.Weight);
            if (_disposed || (flow.Waiting.Count == 0 && _inFlight < _maxInFlight && TicksUntil(flow, bytes, now) == 0))
            {
                Dispatch(flow, bytes, start, now);
                return new ValueTask<bool>(true);
            }
            QosWaiter waiter = _free.Count > 0 ? _free.Pop() : new QosWaiter(this);
            waiter.Flow = flow;
            waiter.Bytes = bytes;
            waiter.Start = start;
            pending = waiter.Pending;
            flow.Waiting.Enqueue(waiter);
            if (flow.Queued++ == 0)
            {
                flow.WaitingSince = now;
                _backlogged.Add(flow);
            }
            Pump(now);
        }
        ReleaseReady();
        return pending;
    }

    internal void Complete()
    {
        lock (_lock)
        {
            _inFlight--;
            if (_backlogged.Count == 0) return;
            Pump(_time.GetTimestamp());
        }
        ReleaseReady();
    }

    internal void Return(QosWaiter waiter)
    {
        lock (_lock) _free.Push(waiter);
    }

    internal double ThrottledSeconds(QosFlow flow)
    {
        lock (_lock)
        {
            long ticks = flow.ThrottledTicks + (flow.Queued > 0 ? _time.GetTimestamp() - flow.WaitingSince : 0);
            return (double)ticks / _time.TimestampFrequency;
        }
    }

    private static double Cost(int bytes) => 1 + (double)bytes / CostBytesPerUnit;

    private static long TicksUntil(QosFlow flow, int bytes, long now) =>
        Math.Max(flow.Limiter?.TicksUntil(bytes, now) ?? 0, flow.Group?.Limiter?.TicksUntil(bytes, now) ?? 0);

    private void Dispatch(QosFlow flow, int bytes, double start, long now)
    {
        flow.Limiter?.Take(bytes, now);
        flow.Group?.Limiter?.Take(bytes, now);
        _virtualTime = Math.Max(_virtualTime, start);
        _inFlight++;
    }

    /// <summary>Moves the waiting I/Os that may start now to the ready queue, smallest start tag first; arms the timer for the rest.</summary>
    private void Pump(long now)
    {
        while (_backlogged.Count > 0 && (_inFlight < _maxInFlight || _disposed))
        {
            QosFlow? best = null;
            double bestStart = double.MaxValue;
            long soonest = long.MaxValue;
            foreach (QosFlow f in _backlogged)
            {
                QosWaiter head = f.Waiting.Peek();
                long wait = _disposed ? 0 : TicksUntil(f, head.Bytes, now);
                if (wait > 0) soonest = Math.Min(soonest, wait);
                else if (head.Start < bestStart)
                {
                    best = f;
                    bestStart = head.Start;
                }
            }
            if (best == null)
            {
                Arm(now, soonest);
                return;
            }
            QosWaiter w = best.Waiting.Dequeue();
            if (--best.Queued == 0)
            {
                best.ThrottledTicks += now - best.WaitingSince;
                _backlogged.Remove(best);
            }
            Dispatch(best, w.Bytes, w.Start, now);
            _ready.Enqueue(w);
        }
    }

    private void Arm(long now, long ticksFromNow)
    {
        long due = now + ticksFromNow;
        if (due >= _timerDue && _timerDue > now) return; // already armed for earlier
        _timerDue = due;
        // Rounded up to whole milliseconds: a timer firing early would only find the bucket short again.
        long ms = Math.Max(1, (ticksFromNow * 1000 + _time.TimestampFrequency - 1) / _time.TimestampFrequency);
        _timer.Change(TimeSpan.FromMilliseconds(ms), Timeout.InfiniteTimeSpan);
    }

    private void OnTimer()
    {
        lock (_lock)
        {
            _timerDue = long.MaxValue;
            Pump(_time.GetTimestamp());
        }
        ReleaseReady();
    }

    /// <summary>
    /// Lets the ready I/Os go, outside the lock; their continuations run here. A continuation that completes at once
    /// and releases more only queues them: the outermost loop on this thread lets them go, so the stack stays flat.
    /// </summary>
    private void ReleaseReady()
    {
        if (t_releasing == this) return;
        QosScheduler? outer = t_releasing;
        t_releasing = this;
        try
        {
            while (true)
            {
                QosWaiter? w;
                lock (_lock)
                {
                    if (!_ready.TryDequeue(out w)) return;
                }
                w.Release();
            }
        }
        finally
        {
            t_releasing = outer;
        }
    }

    /// <summary>Stops the timer and lets every waiting I/O go (nothing waits forever on a closed pool).</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            Pump(_time.GetTimestamp());
        }
        _timer.Dispose();
        ReleaseReady();
    }
}
