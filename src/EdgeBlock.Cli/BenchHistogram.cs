using System.Diagnostics;
using HdrHistogram;

namespace EdgeBlock.Cli;

/// <summary>Latency percentiles of a run, in microseconds.</summary>
internal sealed record LatencySummary(long Count, double Mean, double Min, double P50, double P90, double P99, double P999, double Max);

/// <summary>
/// Latencies in Stopwatch ticks (nanoseconds on Linux) in an HdrHistogram: log-linear buckets with 3 significant
/// digits (0.1% precision) from 1 tick to a minute. Recording allocates nothing; one histogram has one writer at a time.
/// </summary>
internal sealed class LatencyHistogram
{
    /// <summary>Anything slower than a minute is recorded as a minute.</summary>
    public static readonly long HighestTicks = Stopwatch.Frequency * 60;

    private readonly LongHistogram _histogram = new(HighestTicks, 3);
    private long _min = long.MaxValue;

    public long Count => _histogram.TotalCount;

    public void Record(long ticks)
    {
        if (ticks < 1) ticks = 1;
        else if (ticks > HighestTicks) ticks = HighestTicks;
        if (ticks < _min) _min = ticks;
        _histogram.RecordValue(ticks);
    }

    public void Add(LatencyHistogram other)
    {
        if (other.Count == 0) return;
        _histogram.Add(other._histogram);
        _min = Math.Min(_min, other._min);
    }

    /// <summary>The value at a percentile (0..100), in microseconds; 0 when nothing was recorded.</summary>
    public double PercentileMicros(double percentile) => Count == 0 ? 0 : TicksToMicros(_histogram.GetValueAtPercentile(percentile));

    public LatencySummary Summarize() => Count == 0
        ? new LatencySummary(0, 0, 0, 0, 0, 0, 0, 0)
        : new LatencySummary(Count,
            Mean: TicksToMicros(_histogram.GetMean()),
            Min: TicksToMicros(_min),
            P50: PercentileMicros(50),
            P90: PercentileMicros(90),
            P99: PercentileMicros(99),
            P999: PercentileMicros(99.9),
            Max: TicksToMicros(_histogram.GetMaxValue()));

    public static double TicksToMicros(double ticks) => ticks * 1e6 / Stopwatch.Frequency;
}
