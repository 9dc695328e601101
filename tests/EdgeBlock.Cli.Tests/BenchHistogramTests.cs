using System.Diagnostics;

namespace EdgeBlock.Cli.Tests;

public sealed class BenchHistogramTests
{
    private static long Micros(double us) => (long)(us * Stopwatch.Frequency / 1e6);

    [Fact]
    public void Percentiles_OfAUniformSpread_AreWithinTheHistogramsPrecision()
    {
        var h = new LatencyHistogram();
        for (int us = 1; us <= 10_000; us++) h.Record(Micros(us));

        var s = h.Summarize();
        Assert.Equal(10_000, s.Count);
        Assert.Equal(5_000, s.P50, tolerance: 5_000 * 0.002);
        Assert.Equal(9_900, s.P99, tolerance: 9_900 * 0.002);
        Assert.Equal(9_990, s.P999, tolerance: 9_990 * 0.002);
        Assert.Equal(10_000, s.Max, tolerance: 10_000 * 0.002);
        Assert.Equal(1, s.Min, tolerance: 0.01);
        Assert.Equal(5_000.5, s.Mean, tolerance: 5_000 * 0.002);
    }

    [Fact]
    public void ATail_ShowsInP99ButNotInP50()
    {
        var h = new LatencyHistogram();
        for (int i = 0; i < 990; i++) h.Record(Micros(100));
        for (int i = 0; i < 10; i++) h.Record(Micros(5_000));

        Assert.Equal(100, h.PercentileMicros(50), tolerance: 0.2);
        Assert.Equal(100, h.PercentileMicros(99), tolerance: 0.2);
        Assert.Equal(5_000, h.PercentileMicros(99.9), tolerance: 5);
    }

    [Fact]
    public void Add_MergesCountsAndExtremes()
    {
        var a = new LatencyHistogram();
        var b = new LatencyHistogram();
        a.Record(Micros(10));
        b.Record(Micros(20));
        b.Record(Micros(30));

        var all = new LatencyHistogram();
        all.Add(a);
        all.Add(b);
        all.Add(new LatencyHistogram());

        var s = all.Summarize();
        Assert.Equal(3, s.Count);
        Assert.Equal(10, s.Min, tolerance: 0.05);
        Assert.Equal(30, s.Max, tolerance: 0.05);
    }

    [Fact]
    public void Empty_SummarizesToZeroes_AndOutOfRangeValuesAreClamped()
    {
        Assert.Equal(new LatencySummary(0, 0, 0, 0, 0, 0, 0, 0), new LatencyHistogram().Summarize());

        var h = new LatencyHistogram();
        h.Record(-5);
        h.Record(LatencyHistogram.HighestTicks * 10);
        Assert.Equal(2, h.Count);
        Assert.Equal(60e6, h.PercentileMicros(100), tolerance: 60e6 * 0.002);
    }

    [Fact]
    public void Recording_AllocatesNothing()
    {
        var h = new LatencyHistogram();
        RecordMany(h); // warm up the same loop: tiered JIT and on-stack replacement finish here, not while measuring
        long before = GC.GetAllocatedBytesForCurrentThread();
        RecordMany(h);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);

        static void RecordMany(LatencyHistogram h)
        {
            for (int i = 0; i < 100_000; i++) h.Record(Micros(i % 5_000 + 1));
        }
    }
}
