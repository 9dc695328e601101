namespace EdgeBlock.Cli.Tests;

public sealed class BenchPhaseTests
{
    [Fact]
    public void RandomOffsets_AreAlignedAndInsideTheRange()
    {
        const long range = 1L << 20;
        var phase = new BenchPhase("t", BenchPattern.RandRead, 0, range, 4096, queues: 1, onePass: false, ioLimitBytes: 0, verifyReads: false, patternWrites: false);
        var worker = new BenchWorker(0, 1, new byte[4096], seed: 9);
        var seen = new HashSet<long>();
        for (int i = 0; i < 10_000; i++)
        {
            Assert.True(phase.TryNext(worker, out long offset, out bool read));
            Assert.True(read);
            Assert.Equal(0, offset % 4096);
            Assert.InRange(offset, 0, range - 4096);
            seen.Add(offset);
        }
        Assert.True(seen.Count > 200, $"only {seen.Count} of 256 offsets in 10,000 draws");
    }

    [Fact]
    public void OnePass_CoversTheRangeOnceInOrder()
    {
        var phase = new BenchPhase("fill", BenchPattern.Write, 0, 10 * 8192, 8192, queues: 2, onePass: true, ioLimitBytes: 0, verifyReads: false, patternWrites: true);
        var worker = new BenchWorker(0, 1, new byte[8192], seed: 1);
        var offsets = new List<long>();
        while (phase.TryNext(worker, out long offset, out bool read))
        {
            Assert.False(read);
            offsets.Add(offset);
        }
        Assert.Equal(Enumerable.Range(0, 10).Select(i => i * 8192L), offsets);
    }

    [Fact]
    public void Sequential_QueuesStartSpreadOverTheRange_AndWrap()
    {
        var phase = new BenchPhase("read", BenchPattern.Read, 0, 4 * 4096, 4096, queues: 2, onePass: false, ioLimitBytes: 0, verifyReads: false, patternWrites: false);
        var q1 = new BenchWorker(0, 1, new byte[4096], seed: 1);
        var q2 = new BenchWorker(1, 2, new byte[4096], seed: 1);
        long Next(BenchWorker w) => phase.TryNext(w, out long o, out _) ? o : -1;

        Assert.Equal([0, 4096, 8192, 12288, 0], new[] { Next(q1), Next(q1), Next(q1), Next(q1), Next(q1) });
        Assert.Equal(8192, Next(q2));
    }

    [Fact]
    public void RandRw_MixesReadsAtTheAskedPercentage_AndIoLimitStops()
    {
        var phase = new BenchPhase("mix", BenchPattern.RandRw, 70, 1L << 30, 4096, queues: 1, onePass: false, ioLimitBytes: 20_000 * 4096L, verifyReads: false, patternWrites: false);
        var worker = new BenchWorker(0, 1, new byte[4096], seed: 3);
        int reads = 0, total = 0;
        while (phase.TryNext(worker, out _, out bool read))
        {
            total++;
            if (read) reads++;
        }
        Assert.Equal(20_000, total);
        Assert.InRange(reads / (double)total, 0.68, 0.72);
    }
}
