using EdgeBlock.Storage;

namespace EdgeBlock.Volumes.Tests;

public class ScrubTests
{
    private const int ChunkBlocks = ChunkLayout.BlocksPerChunk;

    private static async Task<TestPool> PoolWithDataAsync(int chunks)
    {
        TestPool t = await TestPool.CreateAsync();
        VolumeFeatures? f = Features.Parse("lz4+checksum+encrypt");
        await t.Pool.CreateVolumeAsync("v", 1 << 20, features: f, key: t.KeyFor(f));
        await using IBlockDevice dev = t.Pool.OpenVolume("v");
        for (int c = 0; c < chunks; c++) Assert.Equal(BlockStatus.Success, await dev.WriteAsync(c * ChunkBlocks, TestPool.Pattern(ChunkBlocks, c + 1), fua: false));
        Assert.Equal(BlockStatus.Success, await dev.FlushAsync());
        return t;
    }

    [Fact]
    public async Task Scrub_FindsTheFlippedBit_WithTheVolumeAndLbasAReadReports_InVolumesAndSnapshots()
    {
        await using TestPool t = await PoolWithDataAsync(8);
        await t.Pool.SnapshotAsync("v", "s");
        var (place, _) = t.Pool.ChunkAt("v", 5);
        t.Drives[t.DrivePath(place.Drive)].FlipBit(PoolLayout.DataOffset + place.Sector * ChunkLayout.SectorSize + 100, 1);

        ScrubState report = await t.Pool.ScrubAsync(resume: false, ioShare: 1, progress: null, CancellationToken.None);
        Assert.True(report.Finished);
        Assert.Equal(16, report.ChunksChecked); // 8 chunks in the volume, the same 8 in its snapshot
        Assert.Equal(2, report.Errors.Count); // the shared chunk, found in both
        Assert.All(report.Errors, e => Assert.Equal((5L * ChunkBlocks, 6L * ChunkBlocks - 1), (e.FirstLba, e.LastLba)));
        Assert.Equal(["v", "v@s"], report.Errors.Select(e => e.Volume).Order());
        await using IBlockDevice dev = t.Pool.OpenVolume("v");
        Assert.Equal(BlockStatus.ReadError, await dev.ReadAsync(5 * ChunkBlocks + 2, new byte[4096]));
        // The report is kept with the pool.
        await t.ReopenAsync();
        Assert.Equal(2, t.Pool.Scrub!.Errors.Count);
    }

    [Fact]
    public async Task Scrub_Cancelled_KeepsItsPlace_AndResumesThereAfterAReopen()
    {
        await using TestPool t = await PoolWithDataAsync(12);
        using var cancel = new CancellationTokenSource();
        var progress = new SyncProgress(p => { if (p.ChunksChecked == 5) cancel.Cancel(); });
        ScrubState first = await t.Pool.ScrubAsync(resume: false, ioShare: 1, progress, cancel.Token);
        Assert.True(first.Cancelled);
        Assert.False(first.Finished);
        Assert.Equal(5, first.ChunksChecked);
        await t.ReopenAsync();
        Assert.Equal(5, t.Pool.Scrub!.ChunksChecked);
        var reports = new List<ScrubProgress>();
        ScrubState resumed = await t.Pool.ScrubAsync(resume: true, ioShare: 1, new SyncProgress(reports.Add), CancellationToken.None);
        Assert.True(resumed.Finished);
        Assert.All(reports, r => Assert.Equal(12, r.ChunksTotal)); // the checked part counted once
        Assert.Equal(12, resumed.ChunksChecked); // each chunk once
        Assert.Equal(first.Started, resumed.Started);
        Assert.Empty(resumed.Errors);
    }

    [Fact]
    public async Task Scrub_Progress_ReportsTheTotalBeforeTheFirstChunk()
    {
        await using TestPool t = await PoolWithDataAsync(3);
        var reports = new List<ScrubProgress>();
        await t.Pool.ScrubAsync(resume: false, ioShare: 1, new SyncProgress(reports.Add), CancellationToken.None);
        Assert.Equal(new ScrubProgress(0, 3, 0, 0, null), reports[0]);
        Assert.Equal([0, 1, 2, 3], reports.Select(r => r.ChunksChecked));
    }

    [Fact]
    public async Task MarkScrubInterrupted_AfterACancel_IsSavedAsUnfinishedAndNotCancelled()
    {
        await using TestPool t = await PoolWithDataAsync(6);
        using var cancel = new CancellationTokenSource();
        var progress = new SyncProgress(p => { if (p.ChunksChecked == 2) cancel.Cancel(); });
        Assert.True((await t.Pool.ScrubAsync(resume: false, ioShare: 1, progress, cancel.Token)).Cancelled);

        t.Pool.MarkScrubInterrupted();
        await t.ReopenAsync();

        Assert.Equal((false, false, 2L), (t.Pool.Scrub!.Finished, t.Pool.Scrub.Cancelled, t.Pool.Scrub.ChunksChecked));
    }

    [Fact]
    public async Task Scrub_WithASmallIoShare_TakesProportionallyLonger()
    {
        await using TestPool t = await PoolWithDataAsync(4);
        var slow = new SlowDrive(t);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        await t.Pool.ScrubAsync(resume: false, ioShare: 0.25, progress: null, CancellationToken.None);
        // 4 reads of >= 20 ms each, then 3x that idle after each: at least 4 * 80 ms.
        Assert.True(watch.ElapsedMilliseconds >= 300, $"{watch.ElapsedMilliseconds} ms");
        Assert.True(slow.Reads >= 4);
        Assert.Throws<VolumeException>(() => { _ = t.Pool.ScrubAsync(false, 0, null, CancellationToken.None).GetAwaiter().GetResult(); });
    }

    /// <summary>Reports synchronously (Progress&lt;T&gt; posts to the thread pool, too late to cancel at an exact count).</summary>
    private sealed class SyncProgress(Action<ScrubProgress> report) : IProgress<ScrubProgress>
    {
        public void Report(ScrubProgress value) => report(value);
    }

    /// <summary>Makes the pool's drives take 20 ms per read.</summary>
    private sealed class SlowDrive
    {
        public int Reads;

        public SlowDrive(TestPool t)
        {
            foreach (int i in new[] { 0, 1 }) t.Drives[t.DrivePath(i)].BeforeRead = () => { Interlocked.Increment(ref Reads); Thread.Sleep(20); };
        }
    }
}
