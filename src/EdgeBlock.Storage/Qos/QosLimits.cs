namespace EdgeBlock.Storage.Qos;

/// <summary>
/// Rate limits of a volume or a group: I/Os per second and bytes per second (0: no limit), and the bursts their
/// token buckets hold (0: a tenth of a second at the rate, at least one I/O). Every command costs one I/O; reads
/// and writes also cost their bytes (flush, write zeroes and deallocate move none).
/// </summary>
public readonly record struct QosLimits(long Iops = 0, long BytesPerSecond = 0, long BurstIops = 0, long BurstBytes = 0)
{
    /// <summary>The default burst: a tenth of a second at the rate.</summary>
    public const int DefaultBurstDivisor = 10;

    public static QosLimits None => default;

    public bool IsNone => Iops == 0 && BytesPerSecond == 0;

    /// <summary>The I/Os a full bucket holds.</summary>
    public long EffectiveBurstIops => BurstIops > 0 ? BurstIops : Math.Max(1, Iops / DefaultBurstDivisor);

    /// <summary>The bytes a full bucket holds.</summary>
    public long EffectiveBurstBytes => BurstBytes > 0 ? BurstBytes : Math.Max(1, BytesPerSecond / DefaultBurstDivisor);
}

/// <summary>The token buckets of one set of <see cref="QosLimits"/>: I/Os and bytes, each only when limited.</summary>
internal sealed class QosLimiter
{
    private TokenBucket _iops;
    private TokenBucket _bytes;
    private readonly bool _limitsIops;
    private readonly bool _limitsBytes;

    public QosLimiter(QosLimits limits, long now, long frequency)
    {
        Limits = limits;
        _limitsIops = limits.Iops > 0;
        _limitsBytes = limits.BytesPerSecond > 0;
        if (_limitsIops) _iops = new TokenBucket(limits.Iops, limits.EffectiveBurstIops, now, frequency);
        if (_limitsBytes) _bytes = new TokenBucket(limits.BytesPerSecond, limits.EffectiveBurstBytes, now, frequency);
    }

    public QosLimits Limits { get; }

    /// <summary>Timestamp ticks until an I/O of <paramref name="bytes"/> may start (0: now).</summary>
    public long TicksUntil(int bytes, long now) =>
        Math.Max(_limitsIops ? _iops.TicksUntil(1, now) : 0, _limitsBytes && bytes > 0 ? _bytes.TicksUntil(bytes, now) : 0);

    public void Take(int bytes, long now)
    {
        if (_limitsIops) _iops.Take(1, now);
        if (_limitsBytes && bytes > 0) _bytes.Take(bytes, now);
    }
}
