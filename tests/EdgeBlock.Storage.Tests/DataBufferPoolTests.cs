using EdgeBlock.Storage;

namespace EdgeBlock.Storage.Tests;

public sealed class DataBufferPoolTests
{
    private const int Large = 128 * 1024;

    private sealed class Waiter : IBufferWaiter
    {
        public int Wakes;
        public void OnBuffersReturned() => Interlocked.Increment(ref Wakes);
    }

    [Fact]
    public void TryRent_BudgetReached_RefusesUntilABufferReturnsAndWakesTheWaiter()
    {
        using var pool = new DataBufferPool(4 * Large, Large);
        var rented = Enumerable.Range(0, 4).Select(_ => pool.TryRent(Large, 0, out var b) ? b : throw new Xunit.Sdk.XunitException("rent")).ToList();

        Assert.False(pool.TryRent(4096, 0, out _));
        var waiter = new Waiter();
        pool.AddWaiter(waiter);
        Assert.Equal(0, waiter.Wakes);

        pool.Return(rented[0]);
        Assert.Equal(1, waiter.Wakes);
        Assert.True(pool.TryRent(Large, 0, out var again));
        Assert.Equal(1, pool.Waits);
        Assert.Equal(4L * Large, pool.PeakInUseBytes);
        pool.Return(again);
        foreach (var b in rented.Skip(1)) pool.Return(b);
        Assert.Equal(0, pool.InUseBytes);
        Assert.Equal(1, waiter.Wakes); // told once per AddWaiter
    }

    [Fact]
    public void TryRent_KeepFree_LeavesThatMuchOfTheBudgetUnused()
    {
        using var pool = new DataBufferPool(2 * Large, Large);
        Assert.True(pool.TryRent(Large, 16384, out var first));
        Assert.False(pool.TryRent(Large, 16384, out _)); // would leave nothing for in-capsule data
        Assert.True(pool.TryRent(16384, 0, out var inCapsule));
        pool.Return(first);
        pool.Return(inCapsule);
    }

    [Fact]
    public void TryRent_OtherSizesKeptFree_UnmapsThemToStayWithinTheBudget()
    {
        using var pool = new DataBufferPool(2 * Large, Large);
        var small = Enumerable.Range(0, 64).Select(_ => pool.TryRent(4096, 0, out var b) ? b : null!).ToList();
        foreach (var b in small) pool.Return(b);
        Assert.Equal(2L * Large, pool.MappedBytes); // 64 × 4 KiB kept free

        Assert.True(pool.TryRent(Large, 0, out var a));
        Assert.True(pool.TryRent(Large, 0, out var b2));
        Assert.True(pool.MappedBytes <= pool.BudgetBytes, $"{pool.MappedBytes} mapped");
        Assert.Equal(Large, a.Length);
        pool.Return(a);
        pool.Return(b2);
    }

    [Fact]
    public void RentAndReturn_SteadyState_AllocatesNothing()
    {
        using var pool = new DataBufferPool(64 * Large, Large);
        var held = new AlignedBuffer[32];
        void Cycle()
        {
            for (int i = 0; i < held.Length; i++) pool.TryRent(4096 << (i % 6), 0, out held[i]!);
            for (int i = 0; i < held.Length; i++) pool.Return(held[i]);
        }
        Cycle(); // maps the buffers and grows the free lists
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int n = 0; n < 1000; n++) Cycle();
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void Trim_BuffersUnusedForAnInterval_GoBackToTheKernelBeyondTheReserve()
    {
        const int count = 256; // 32 MiB, every page touched
        using var pool = new DataBufferPool(count * Large, Large, retainBytes: 4 * Large, trimInterval: Timeout.InfiniteTimeSpan);
        long rssBefore = ResidentBytes();
        var held = new List<AlignedBuffer>();
        for (int i = 0; i < count; i++)
        {
            Assert.True(pool.TryRent(Large, 0, out var b));
            b.Span.Fill(0xA5);
            held.Add(b);
        }
        long rssLoaded = ResidentBytes();
        foreach (var b in held) pool.Return(b);

        pool.Trim(); // starts the interval: everything free now was in use during the last one
        Assert.Equal((long)count * Large, pool.MappedBytes);
        pool.Trim(); // a whole interval unused
        Assert.Equal(4L * Large, pool.MappedBytes);
        long rssAfter = ResidentBytes();
        Assert.True(rssLoaded - rssBefore > 24L << 20, $"loaded RSS grew only {(rssLoaded - rssBefore) >> 20} MiB");
        Assert.True(rssLoaded - rssAfter > 24L << 20, $"RSS fell only {(rssLoaded - rssAfter) >> 20} MiB after the trim");
    }

    [Fact]
    public void Trim_BuffersUsedDuringTheInterval_AreKept()
    {
        using var pool = new DataBufferPool(16 * Large, Large, retainBytes: 0, trimInterval: Timeout.InfiniteTimeSpan);
        var held = Enumerable.Range(0, 8).Select(_ => pool.TryRent(Large, 0, out var b) ? b : null!).ToList();
        foreach (var b in held) pool.Return(b);
        pool.Trim();
        // Half of them are needed again during the next interval: those stay mapped, the rest go.
        var again = Enumerable.Range(0, 4).Select(_ => pool.TryRent(Large, 0, out var b) ? b : null!).ToList();
        foreach (var b in again) pool.Return(b);
        pool.Trim();
        Assert.Equal(4L * Large, pool.MappedBytes);
    }

    private static long ResidentBytes() =>
        long.Parse(File.ReadAllText("/proc/self/statm").Split(' ')[1]) * Environment.SystemPageSize;
}
