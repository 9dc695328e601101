namespace EdgeBlock.Storage.Qos;

/// <summary>
/// A token bucket: <see cref="Rate"/> tokens per second flow in, at most <see cref="Capacity"/> (the burst) are kept.
/// An operation may start when the bucket holds its cost, or is full (so an operation larger than the burst still
/// runs once in a while); it then takes its whole cost, which may leave the bucket in debt that the rate repays.
/// So over any long run no more than Rate × time + Capacity tokens are taken, whatever the operation sizes.
/// Pure arithmetic over timestamps the caller reads from its clock (<see cref="TimeProvider.GetTimestamp"/>):
/// nothing here reads a clock, so a test drives it with made-up times.
/// </summary>
public struct TokenBucket
{
    private double _tokens;
    private long _last;

    /// <summary>A full bucket at <paramref name="now"/>.</summary>
    public TokenBucket(double rate, double capacity, long now, long frequency)
    {
        if (!(rate > 0)) throw new ArgumentOutOfRangeException(nameof(rate), rate, "a rate is above 0");
        if (!(capacity >= 1)) throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "a burst is at least 1");
        Rate = rate;
        Capacity = capacity;
        Frequency = frequency;
        _tokens = capacity;
        _last = now;
    }

    public double Rate { get; }
    public double Capacity { get; }
    /// <summary>Timestamp ticks per second of the clock the caller reads.</summary>
    public long Frequency { get; }

    /// <summary>Tokens held at <paramref name="now"/> (negative while in debt).</summary>
    public double Tokens(long now)
    {
        Refill(now);
        return _tokens;
    }

    /// <summary>True when an operation of <paramref name="cost"/> may start at <paramref name="now"/>.</summary>
    public bool CanTake(double cost, long now)
    {
        Refill(now);
        return _tokens >= Math.Min(cost, Capacity);
    }

    /// <summary>Takes <paramref name="cost"/> tokens (after <see cref="CanTake"/> said yes).</summary>
    public void Take(double cost, long now)
    {
        Refill(now);
        _tokens -= cost;
    }

    /// <summary>Timestamp ticks from <paramref name="now"/> until an operation of <paramref name="cost"/> may start (0: now).</summary>
    public long TicksUntil(double cost, long now)
    {
        Refill(now);
        double missing = Math.Min(cost, Capacity) - _tokens;
        return missing <= 0 ? 0 : (long)Math.Ceiling(missing / Rate * Frequency);
    }

    private void Refill(long now)
    {
        long elapsed = now - _last;
        if (elapsed <= 0) return; // a clock read before the last one adds nothing
        _last = now;
        _tokens = Math.Min(Capacity, _tokens + elapsed * Rate / Frequency);
    }
}
