using CsCheck;

namespace EdgeBlock.Volumes.Tests;

public class SparseMapTests
{
    /// <summary>An entry that knows where it was put, so a reader can tell a right answer from a torn one.</summary>
    private sealed record Item(long Index);

    [Fact]
    public void New_LargestMap_CostsOneRootPage()
    {
        var map = new SparseMap<Item>(SparseMap<Item>.MaxLength);

        Assert.Equal(SparseMap<Item>.PageBytes, map.Bytes);
        Assert.Null(map[0]);
        Assert.Null(map[SparseMap<Item>.MaxLength - 1]);
        Assert.Null(map[SparseMap<Item>.MaxLength]); // past the end reads as unmapped
        Assert.Equal(0, map.Count);
    }

    [Fact]
    public void New_LongerThanItCanIndex_IsRefused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new SparseMap<Item>(SparseMap<Item>.MaxLength + 1));
    }

    [Fact]
    public void Set_SpreadEntries_AddPagesPerEntry_AndClearingThemFreesEveryPageButTheRoot()
    {
        long length = 100L << 20; // a 100 TiB volume of 1 MiB extents: three levels
        var map = new SparseMap<Item>(length);
        long stride = length / 64;

        for (long i = 0; i < 64; i++) map.Set(i * stride, new Item(i * stride));

        // Each entry is far from the others: a leaf page of its own, and at most a middle page.
        Assert.Equal(64, map.Count);
        Assert.InRange(map.Bytes, 65L * SparseMap<Item>.PageBytes, (1 + 64L * 2) * SparseMap<Item>.PageBytes);
        for (long i = 0; i < 64; i++) Assert.Equal(i * stride, map[i * stride]!.Index);
        Assert.Null(map[stride + 1]);

        for (long i = 0; i < 64; i++) map.Set(i * stride, null);

        Assert.Equal(0, map.Count);
        Assert.Equal(SparseMap<Item>.PageBytes, map.Bytes);
        Assert.Empty(map.Entries());
    }

    [Fact]
    public void Set_DenseEntries_CostAPagePer512()
    {
        var map = new SparseMap<Item>(1L << 20);

        for (long i = 0; i < 4096; i++) map.Set(i, new Item(i));

        // 8 leaf pages, one middle page, the root.
        Assert.Equal(10L * SparseMap<Item>.PageBytes, map.Bytes);
    }

    [Fact]
    public void Entries_FromAnIndex_AreInOrderAndSkipHoles()
    {
        var map = new SparseMap<Item>(1L << 30);
        long[] at = [3, 511, 512, 70_000, 1L << 20, (1L << 30) - 1];
        foreach (long i in at) map.Set(i, new Item(i));

        Assert.Equal(at, map.Entries().Select(e => e.Index));
        Assert.Equal(at[2..], map.Entries(512).Select(e => e.Value.Index));
        Assert.Equal(at[3..], map.Entries(513).Select(e => e.Index));
        long next = 70_001;
        Assert.Equal(1L << 20, map.Next(ref next)!.Index);
        Assert.Equal(1L << 20, next);
    }

    [Fact]
    public void Resize_GrowingAddsLevels_KeepsEntries_AndShrinkingDropsWhatIsPastTheEnd()
    {
        var map = new SparseMap<Item>(100);
        map.Set(7, new Item(7));
        map.Set(99, new Item(99));

        map.Resize(1L << 30);
        map.Set((1L << 30) - 1, new Item((1L << 30) - 1));

        Assert.Equal([7L, 99, (1L << 30) - 1], map.Entries().Select(e => e.Index));

        map.Resize(50);

        Assert.Equal([7L], map.Entries().Select(e => e.Index));
        Assert.Null(map[99]);
        Assert.Throws<ArgumentOutOfRangeException>(() => map.Set(50, new Item(50)));
    }

    [Fact]
    public void RandomSetsAndClears_MatchADictionary_AndLeaveNoEmptyPage()
    {
        Gen.Select(Gen.Long[0, (1L << 24) - 1], Gen.Bool).Array[1, 400].Sample(ops =>
        {
            var map = new SparseMap<Item>(1L << 24);
            var model = new SortedDictionary<long, Item>();
            foreach (var (index, set) in ops)
            {
                // Clears mostly hit what is there, so pages empty out.
                long i = !set && model.Count > 0 ? model.Keys.ElementAt((int)(index % model.Count)) : index;
                Item? value = set ? new Item(i) : null;
                map.Set(i, value);
                if (value is null) model.Remove(i);
                else model[i] = value;
            }
            Assert.Equal(model.Keys, map.Entries().Select(e => e.Index));
            Assert.Equal(model.Count, map.Count);
            foreach (var (i, item) in model) Assert.Same(item, map[i]);
            // Pages: at most the root plus two (a middle and a leaf) per entry, and none once all are cleared.
            Assert.InRange(map.Bytes, SparseMap<Item>.PageBytes, (1 + 2L * model.Count) * SparseMap<Item>.PageBytes);
            foreach (long i in model.Keys.ToList()) map.Set(i, null);
            Assert.Equal(SparseMap<Item>.PageBytes, map.Bytes);
        }, iter: 200);
    }

    [Fact]
    public async Task Readers_WhileOneWriterAddsAndFreesPages_SeeOnlyWhatWasSetThere()
    {
        long length = 1L << 27;
        var map = new SparseMap<Item>(length);
        // The writer runs until the reader has made enough passes (not for a fixed time: on a loaded machine the
        // reader may get little CPU), with a deadline that only a hung reader reaches.
        const long wantedReads = 1_000_000;
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var stop = new CancellationTokenSource();
        long[] hot = Enumerable.Range(0, 64).Select(i => i * (length / 64) + i).ToArray();
        long reads = 0;
        // Its own thread: a thread-pool item could wait behind other tests' work for the whole run.
        Task reader = Task.Factory.StartNew(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                foreach (long i in hot)
                {
                    if (map[i] is { } item) Assert.Equal(i, item.Index);
                    Interlocked.Increment(ref reads);
                }
                long at = 0;
                while (map.Next(ref at) is { } found)
                {
                    Assert.Equal(at, found.Index);
                    at++;
                }
            }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        var random = new Random(7);
        while (Interlocked.Read(ref reads) < wantedReads && !deadline.IsCancellationRequested && !reader.IsCompleted)
        {
            long i = hot[random.Next(hot.Length)];
            map.Set(i, map[i] is null ? new Item(i) : null); // each set or clear adds or frees a leaf and a middle page
        }
        stop.Cancel();
        await reader;
        Assert.True(Interlocked.Read(ref reads) >= wantedReads, $"the reader made {reads} reads in 60 s");
    }
}
