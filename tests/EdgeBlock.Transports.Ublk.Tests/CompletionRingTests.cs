namespace EdgeBlock.Transports.Ublk.Tests;

public class CompletionRingTests
{
    [Fact]
    public void TryDequeue_Empty_ReturnsFalse()
    {
        var ring = new CompletionRing(8);
        Assert.False(ring.HasItems);
        Assert.False(ring.TryDequeue(out _));
    }

    [Fact]
    public async Task Enqueue_FromManyThreads_EveryTagComesOutOnce()
    {
        const int depth = 64, rounds = 2000;
        var ring = new CompletionRing(depth);
        var seen = new int[depth];
        // Each tag is completed again only after the consumer took it, as the driver guarantees.
        var outstanding = new SemaphoreSlim[depth];
        for (int t = 0; t < depth; t++) outstanding[t] = new SemaphoreSlim(1);
        var producers = Enumerable.Range(0, 4).Select(p => Task.Run(() =>
        {
            for (int r = 0; r < rounds; r++)
                for (int t = p; t < depth; t += 4)
                {
                    outstanding[t].Wait();
                    ring.Enqueue(t);
                }
        })).ToArray();
        int total = 0;
        while (total < depth * rounds)
        {
            if (!ring.TryDequeue(out int tag)) { Thread.SpinWait(10); continue; }
            seen[tag]++;
            total++;
            outstanding[tag].Release();
        }
        await Task.WhenAll(producers);
        Assert.All(seen, count => Assert.Equal(rounds, count));
        Assert.False(ring.TryDequeue(out _));
    }
}
