using EdgeBlock.Storage;

namespace EdgeBlock.Volumes.Tests;

public class ConcurrencyTests
{
    /// <summary>
    /// Several queues write and read their own ranges of one volume at once, while snapshots are
    /// taken and deleted and another range is discarded: every queue reads back exactly what it
    /// wrote, and the pool's refcounts and free space stay consistent.
    /// </summary>
    /// <remarks>Chunk volumes run with the pool committing and compacting on its own meanwhile.</remarks>
    [Theory]
    [InlineData("none")]
    [InlineData("lz4+checksum")]
    public async Task ConcurrentQueues_WithSnapshotsAndDiscards_ReadBackTheirOwnData(string features)
    {
        VolumeFeatures? f = Features.Parse(features);
        await using TestPool t = await TestPool.CreateAsync(drives: 2, driveBytes: 16 << 20, selfManaging: f is not null);
        await t.Pool.CreateVolumeAsync("v", 8 << 20, features: f);
        await using IBlockDevice dev = t.Pool.OpenVolume("v");
        const int Queues = 4, BlocksPerQueue = 256, Rounds = 300;
        using var stop = new CancellationTokenSource();
        int snapshots = 0;

        async Task Queue(int q)
        {
            var random = new Random(q);
            var model = new long[BlocksPerQueue];
            var buffer = new byte[4 * BlockPattern.Size];
            long version = (q + 1) * 1_000_000L;
            for (int r = 0; r < Rounds || Volatile.Read(ref snapshots) < 10; r++)
            {
                int block = random.Next(BlocksPerQueue - 4), count = random.Next(1, 5);
                long lba = q * BlocksPerQueue + block;
                for (int i = 0; i < count; i++) BlockPattern.Fill(buffer.AsSpan(i * BlockPattern.Size, BlockPattern.Size), model[block + i] = ++version);
                Assert.Equal(BlockStatus.Success, await dev.WriteAsync(lba, buffer.AsMemory(0, count * BlockPattern.Size), fua: false));
                int check = random.Next(BlocksPerQueue);
                Assert.Equal(BlockStatus.Success, await dev.ReadAsync(q * BlocksPerQueue + check, buffer.AsMemory(0, BlockPattern.Size)));
                Assert.Equal(model[check], BlockPattern.Identify(buffer.AsSpan(0, BlockPattern.Size)));
            }
        }

        async Task Churn()
        {
            int n = 0;
            while (!stop.IsCancellationRequested)
            {
                await t.Pool.SnapshotAsync("v", $"s{n}");
                Assert.Equal(BlockStatus.Success, await dev.DeallocateAsync(Queues * BlocksPerQueue, 64));
                Assert.Equal(BlockStatus.Success, await dev.WriteAsync(Queues * BlocksPerQueue + n % 64, new byte[BlockPattern.Size], false));
                if (n > 1) await t.Pool.DeleteVolumeAsync($"v@s{n - 2}");
                Assert.Equal(BlockStatus.Success, await dev.FlushAsync());
                n++;
                Interlocked.Increment(ref snapshots);
            }
        }

        Task churn = Task.Run(Churn);
        await Task.WhenAll(Enumerable.Range(0, Queues).Select(q => Task.Run(() => Queue(q))));
        stop.Cancel();
        await churn;
        if (f is null) Assert.True(t.Pool.Info().Counters.CopyOnWrites > 0);
        PoolCheckReport report = t.Pool.Check();
        Assert.True(report.Consistent, string.Join("\n", report.Problems));
    }

    /// <summary>
    /// Two queues write alternate blocks of the same chunks at once: each write merges into the
    /// chunk, so without per-chunk ordering one would put back what the other replaced.
    /// </summary>
    [Fact]
    public async Task ConcurrentPartialWrites_IntoTheSameChunks_LoseNoUpdate()
    {
        await using TestPool t = await TestPool.CreateAsync(drives: 2, driveBytes: 8 << 20, selfManaging: true);
        await t.Pool.CreateVolumeAsync("v", 1 << 20, features: Features.Parse("checksum"));
        await using IBlockDevice dev = t.Pool.OpenVolume("v");
        const int Blocks = 64;
        var last = new long[Blocks];

        async Task Writer(int parity)
        {
            var buffer = new byte[BlockPattern.Size];
            for (long version = 1 + parity; version < 4000; version += 2)
            {
                int block = (int)(version % (Blocks / 2)) * 2 + parity;
                BlockPattern.Fill(buffer, version);
                Assert.Equal(BlockStatus.Success, await dev.WriteAsync(block, buffer, fua: false));
                last[block] = version;
            }
        }

        await Task.WhenAll(Task.Run(() => Writer(0)), Task.Run(() => Writer(1)));
        var read = new byte[Blocks * BlockPattern.Size];
        Assert.Equal(BlockStatus.Success, await dev.ReadAsync(0, read));
        for (int b = 0; b < Blocks; b++)
        {
            Assert.Equal(last[b], BlockPattern.Identify(read.AsSpan(b * BlockPattern.Size, BlockPattern.Size)));
        }
        Assert.True(t.Pool.Check().Consistent, string.Join("\n", t.Pool.Check().Problems));
    }

    /// <summary>Steady-state reads and overwrites of allocated extents allocate nothing per I/O.</summary>
    [ReleaseOnlyFact]
    public async Task ReadsAndOverwrites_OfAllocatedSpace_DoNotAllocate()
    {
        string dir = Directory.CreateTempSubdirectory("edgeblock-alloc-").FullName;
        try
        {
            await MeasureAsync(dir, null);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>
    /// The same for chunk volumes, commits included (one per 64 writes: an overwrite's old
    /// chunk is released by the commit, so the amortised cost of commits is part of a write).
    /// </summary>
    [ReleaseOnlyFact]
    public async Task ReadsAndOverwrites_OfACompressedChecksummedVolume_DoNotAllocate()
    {
        string dir = Directory.CreateTempSubdirectory("edgeblock-alloc-").FullName;
        try
        {
            await MeasureAsync(dir, Features.Parse("lz4+checksum"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static async Task MeasureAsync(string dir, VolumeFeatures? features)
    {
        // Plain memory drives: the crashable ones copy every write.
        await using Pool pool = await Pool.CreateAsync("p", Path.Combine(dir, "meta"), [new PoolDriveSpec(Path.Combine(dir, "d0"), 8 << 20)],
            new PoolOptions { OpenDrive = (_, size) => new MemoryBlockDevice(size, PoolLayout.BlockSize), ExtentSize = TestPool.Extent, CommitInterval = TimeSpan.Zero, CompactInterval = TimeSpan.Zero, CommitOnFreedSpace = false });
        await pool.CreateVolumeAsync("v", 4 << 20, features: features);
        await using IBlockDevice dev = pool.OpenVolume("v");
        var buffer = new AlignedBuffer(2 * BlockPattern.Size);
        const int Blocks = 1024;
        for (int lba = 0; lba < Blocks; lba += 2) Assert.Equal(BlockStatus.Success, await dev.WriteAsync(lba, buffer.Memory, false));

        long commitBytes = 0, commits = 0;
        async Task Loop(int n)
        {
            for (int i = 0; i < n; i++)
            {
                long lba = (i * 37) % (Blocks - 2);
                await dev.WriteAsync(lba, buffer.Memory, false);
                await dev.ReadAsync(lba, buffer.Memory);
                if (features is not null && i % 64 == 63)
                {
                    long start = GC.GetAllocatedBytesForCurrentThread();
                    Assert.Equal(BlockStatus.Success, await dev.FlushAsync());
                    commitBytes += GC.GetAllocatedBytesForCurrentThread() - start;
                    commits++;
                }
            }
        }
        await Loop(20_000); // warm up the same loop (tiered JIT, pooled state machines)
        commitBytes = commits = 0;
        long before = GC.GetAllocatedBytesForCurrentThread();
        await Loop(20_000);
        long perIo = (GC.GetAllocatedBytesForCurrentThread() - before - commitBytes) / 40_000;
        // Commits are per flush, not per I/O (they build a RocksDB batch); bounded per chunk written.
        long perCommit = commits == 0 ? 0 : commitBytes / commits;
        Assert.True(perIo < 8, $"{perIo} bytes allocated per I/O (commits aside: {perCommit} bytes per commit of 64 writes)");
        Assert.True(perCommit < 64 * 64, $"{perCommit} bytes allocated per commit of 64 writes");
    }
}
