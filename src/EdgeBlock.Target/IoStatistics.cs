using System.Collections.Concurrent;
using System.Diagnostics;
using System.Numerics;
using System.Runtime.CompilerServices;
using EdgeBlock.Nvme;

namespace EdgeBlock.Target;

/// <summary>
/// Command latencies in fixed power-of-two buckets, for metrics and `edgeblock stats`. Recording is two
/// <see cref="Interlocked"/> adds on preallocated longs: no allocation, no lock, nothing per queue to register.
/// Bucket <c>b</c> counts latencies in (2^(b-1), 2^b] units of <see cref="UnitTicks"/> Stopwatch ticks
/// (about 1 µs), bucket 0 everything up to one unit; the last bucket's bound (~17 s) also holds anything longer.
/// </summary>
public sealed class LatencyHistogram
{
    public const int BucketCount = 25;
    /// <summary>log2 of the bucket unit in Stopwatch ticks: 10 (1.024 µs) where ticks are nanoseconds.</summary>
    private static readonly int Shift = Math.Max(0, (int)Math.Round(Math.Log2(Stopwatch.Frequency / 1e6)));
    private readonly long[] _buckets = new long[BucketCount];
    private long _sumTicks;

    public static long UnitTicks => 1L << Shift;

    /// <summary>Upper bound of bucket <paramref name="bucket"/> in seconds.</summary>
    public static double UpperBoundSeconds(int bucket) => Math.ScaleB(1.0, bucket + Shift) / Stopwatch.Frequency;

    /// <summary>Records the time since <paramref name="startTimestamp"/> (a <see cref="Stopwatch.GetTimestamp"/> value).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void RecordSince(long startTimestamp) => RecordTicks(Stopwatch.GetTimestamp() - startTimestamp);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void RecordTicks(long ticks)
    {
        if (ticks < 1) ticks = 1;
        // ceil(log2(ticks)) - Shift: a latency of exactly 2^b units lands in bucket b (Prometheus buckets are "less or equal").
        int bucket = 64 - BitOperations.LeadingZeroCount((ulong)(ticks - 1)) - Shift;
        bucket = Math.Clamp(bucket, 0, BucketCount - 1);
        Interlocked.Increment(ref _buckets[bucket]);
        Interlocked.Add(ref _sumTicks, ticks);
    }

    /// <summary>A copy of the counts (not atomic across buckets; good enough for monitoring).</summary>
    public LatencySnapshot Snapshot()
    {
        var counts = new long[BucketCount];
        for (int i = 0; i < BucketCount; i++) counts[i] = Interlocked.Read(ref _buckets[i]);
        return new LatencySnapshot(counts, Interlocked.Read(ref _sumTicks) / (double)Stopwatch.Frequency);
    }
}

/// <summary>Bucket counts of a <see cref="LatencyHistogram"/> (bounds from <see cref="LatencyHistogram.UpperBoundSeconds"/>) and the exact sum.</summary>
public sealed record LatencySnapshot(long[] Counts, double SumSeconds)
{
    public long Count => Counts.Sum();

    public double MeanSeconds => Count == 0 ? 0 : SumSeconds / Count;

    /// <summary>
    /// The latency below which a fraction <paramref name="q"/> of the commands completed, interpolated
    /// inside its bucket (so it is exact to within the bucket's factor of two); 0 when nothing was recorded.
    /// </summary>
    public double Quantile(double q)
    {
        long total = Count;
        if (total == 0) return 0;
        double rank = Math.Clamp(q, 0, 1) * total;
        long seen = 0;
        for (int b = 0; b < Counts.Length; b++)
        {
            if (Counts[b] == 0) continue;
            if (seen + Counts[b] >= rank)
            {
                double lower = b == 0 ? 0 : LatencyHistogram.UpperBoundSeconds(b - 1);
                double upper = LatencyHistogram.UpperBoundSeconds(b);
                return lower + (upper - lower) * Math.Clamp((rank - seen) / Counts[b], 0, 1);
            }
            seen += Counts[b];
        }
        return LatencyHistogram.UpperBoundSeconds(Counts.Length - 1);
    }
}

/// <summary>
/// Commands that completed with an error, by NVMe status (SCT, SC). The table gains an entry the first time
/// a status is seen (errors are rare); after that counting is a lock-free lookup and an Interlocked add.
/// </summary>
public sealed class StatusCounts
{
    private readonly ConcurrentDictionary<ushort, StrongBox<long>> _counts = new();

    public void Increment(NvmeStatus status)
    {
        ushort key = (ushort)(((byte)status.Sct << 8) | status.Sc);
        var box = _counts.GetOrAdd(key, static _ => new StrongBox<long>());
        Interlocked.Increment(ref box.Value);
    }

    /// <summary>(SCT, SC, count) for each status seen, ordered by SCT then SC.</summary>
    public IReadOnlyList<(StatusCodeType Sct, byte Sc, long Count)> Snapshot() =>
        _counts.OrderBy(kv => kv.Key)
            .Select(kv => ((StatusCodeType)(kv.Key >> 8), (byte)kv.Key, Interlocked.Read(ref kv.Value.Value)))
            .ToList();
}
