using EdgeBlock.Storage;

namespace EdgeBlock.Volumes.Tests;

public class ConcurrencyTests
{
    /// <summary>
    /// Several queues write and read their own ranges of one volume at once, while snapshots are
    /// taken and deleted and another range is discarded: every queue reads back exactly what it
    /// wrote, and the pool's refcounts and free space stay consistent.
    /// </summary>
    [Fact]
    public async Task ConcurrentQueues_WithSnapshotsAndDiscards_ReadBackTheirOwnData()
    {
        await using TestPool t = await TestPool.CreateAsync(drives: 2, driveBytes: 16 << 20);
        await t.Pool.CreateVolumeAsync("v", 8 << 20);
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
        Assert.True(t.Pool.Info().Counters.CopyOnWrites > 0);
        PoolCheckReport report = t.Pool.Check();
        Assert.True(report.Consistent, string.Join("\n", report.Problems));
    }

    /// <summary>Steady-state reads and overwrites of allocated extents allocate nothing per I/O.</summary>
    [ReleaseOnlyFact]
    public async Task ReadsAndOverwrites_OfAllocatedSpace_DoNotAllocate()
    {
        string dir = Directory.CreateTempSubdirectory("edgeblock-alloc-").FullName;
        try
        {
            await MeasureAsync(dir);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static async Task MeasureAsync(string dir)
    {
        // Plain memory drives: the crashable ones copy every write.
        await using Pool pool = await Pool.CreateAsync("p", Path.Combine(dir, "meta"), [new PoolDriveSpec(Path.Combine(dir, "d0"), 8 << 20)],
            new PoolOptions { OpenDrive = (_, size) => new MemoryBlockDevice(size, PoolLayout.BlockSize), ExtentSize = TestPool.Extent, CommitInterval = TimeSpan.Zero });
        await pool.CreateVolumeAsync("v", 4 << 20);
        await using IBlockDevice dev = pool.OpenVolume("v");
        var buffer = new AlignedBuffer(2 * BlockPattern.Size);
        const int Blocks = 1024;
        for (int lba = 0; lba < Blocks; lba += 2) Assert.Equal(BlockStatus.Success, await dev.WriteAsync(lba, buffer.Memory, false));

        async Task Loop(int n)
        {
            for (int i = 0; i < n; i++)
            {
                long lba = (i * 37) % (Blocks - 2);
                await dev.WriteAsync(lba, buffer.Memory, false);
                await dev.ReadAsync(lba, buffer.Memory);
            }
        }
        await Loop(20_000); // warm up the same loop (tiered JIT, pooled state machines)
        long before = GC.GetAllocatedBytesForCurrentThread();
        await Loop(20_000);
        long perIo = (GC.GetAllocatedBytesForCurrentThread() - before) / 40_000;
        Assert.True(perIo < 8, $"{perIo} bytes allocated per I/O");
    }
}
