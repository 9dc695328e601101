using System.Diagnostics;
using EdgeBlock.Nvme;
using EdgeBlock.Target.Tests.Support;

namespace EdgeBlock.Target.Tests;

/// <summary>Per-namespace latency histograms and errors by status, as the target records them.</summary>
public sealed class IoStatisticsTests
{
    private const uint Nsid = 1;
    private const int Block = TestTarget.BlockSize;

    [Fact]
    public void Histogram_PutsEachLatencyInItsPowerOfTwoBucket_WithAnExactSum()
    {
        var h = new LatencyHistogram();
        long unit = LatencyHistogram.UnitTicks;
        h.RecordTicks(0);             // bucket 0 (≤ 1 unit)
        h.RecordTicks(unit);          // bucket 0: exactly its bound ("less or equal")
        h.RecordTicks(unit + 1);      // bucket 1
        h.RecordTicks(4 * unit);      // bucket 2
        h.RecordTicks(long.MaxValue / 2); // beyond the last bound: the last bucket

        var s = h.Snapshot();
        Assert.Equal(2, s.Counts[0]);
        Assert.Equal(1, s.Counts[1]);
        Assert.Equal(1, s.Counts[2]);
        Assert.Equal(1, s.Counts[LatencyHistogram.BucketCount - 1]);
        Assert.Equal(5, s.Count);
        double expectedSum = (1 + unit + unit + 1 + 4 * unit + (double)(long.MaxValue / 2)) / Stopwatch.Frequency;
        Assert.Equal(expectedSum, s.SumSeconds, expectedSum * 1e-12);
        // Bounds double from about a microsecond.
        Assert.InRange(LatencyHistogram.UpperBoundSeconds(0), 0.5e-6, 2e-6);
        Assert.Equal(2 * LatencyHistogram.UpperBoundSeconds(3), LatencyHistogram.UpperBoundSeconds(4), 1e-15);
    }

    [Fact]
    public void Quantile_InterpolatesInsideTheBucket()
    {
        var h = new LatencyHistogram();
        long unit = LatencyHistogram.UnitTicks;
        for (int i = 0; i < 90; i++) h.RecordTicks(3 * unit);   // bucket 2: (2, 4] units
        for (int i = 0; i < 10; i++) h.RecordTicks(100 * unit); // bucket 7: (64, 128] units
        var s = h.Snapshot();
        double u = LatencyHistogram.UpperBoundSeconds(0);
        Assert.InRange(s.Quantile(0.5), 2 * u, 4 * u);
        Assert.InRange(s.Quantile(0.99), 64 * u, 128 * u);
        Assert.Equal(0, new LatencyHistogram().Snapshot().Quantile(0.5));
    }

    [Fact]
    public async Task Io_RecordsLatencyByKind_AndErrorsByStatus()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 1);
        var counters = t.Subsystem.FindNamespace(Nsid)!.Counters;
        var data = TestData.Pattern(2 * Block, 5);

        for (int i = 0; i < 3; i++) Assert.True((await host.WriteAsync(Nsid, 0, 2, data)).IsSuccess);
        for (int i = 0; i < 4; i++) Assert.True((await host.ReadAsync(Nsid, 0, 2, new byte[2 * Block])).IsSuccess);
        Assert.True((await host.FlushAsync(Nsid)).IsSuccess);
        Assert.True((await host.WriteZeroesAsync(Nsid, 8, 1)).IsSuccess);
        ulong blocks = TestTarget.NamespaceBytes / Block;
        Assert.Equal(NvmeStatus.LbaOutOfRange, (await host.ReadAsync(Nsid, blocks, 1, new byte[Block])).Status);
        Assert.Equal(NvmeStatus.LbaOutOfRange, (await host.WriteAsync(Nsid, blocks, 1, new byte[Block])).Status);
        var other = (byte[])data.Clone();
        other[7] ^= 1;
        Assert.Equal(NvmeStatus.CompareFailure.Sc, (await host.CompareAsync(Nsid, 0, 2, other)).Status.Sc);

        Assert.Equal(3, counters.WriteLatency.Snapshot().Count);
        Assert.Equal(4, counters.ReadLatency.Snapshot().Count);
        Assert.Equal(3, counters.OtherLatency.Snapshot().Count); // flush, write zeroes, compare
        Assert.Equal(3, Interlocked.Read(ref counters.OtherCommands));
        Assert.True(counters.ReadLatency.Snapshot().SumSeconds > 0);
        Assert.Equal(3, Interlocked.Read(ref counters.Errors));
        Assert.Equal(
            [(StatusCodeType.Generic, (byte)0x80, 2L), (StatusCodeType.MediaAndDataIntegrity, (byte)0x85, 1L)],
            counters.ErrorsByStatus.Snapshot());
    }
}
