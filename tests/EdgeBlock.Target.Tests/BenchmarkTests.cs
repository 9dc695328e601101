using System.Diagnostics;
using EdgeBlock.Initiator;
using EdgeBlock.Storage;
using EdgeBlock.Target.Tests.Support;
using Xunit.Abstractions;

namespace EdgeBlock.Target.Tests;

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class BenchmarkCollection
{
    public const string Name = "benchmarks (run alone)";
}

/// <summary>
/// 4 KiB random reads at QD32 against the null backend over loopback: the initiator and target together.
/// Runs briefly as a smoke test; for a measurement set EDGEBLOCK_BENCH_SECONDS, e.g.
/// <c>EDGEBLOCK_BENCH_SECONDS=5 dotnet test tests/EdgeBlock.Target.Tests -c Release --filter RandomRead4KiB --logger "console;verbosity=detailed"</c>
/// (EDGEBLOCK_BENCH_QUEUES spreads the 32 commands over more I/O queues; EDGEBLOCK_BENCH_INLINE=1 runs completions on the receive loop).
/// </summary>
[Collection(BenchmarkCollection.Name)]
public sealed class BenchmarkTests(ITestOutputHelper output)
{
    private const int Depth = 32;
    private const int Block = 4096;

    [Fact]
    public async Task RandomRead4KiB_Qd32_NullDevice_AllCompleteAndReportIops()
    {
        double seconds = double.TryParse(Environment.GetEnvironmentVariable("EDGEBLOCK_BENCH_SECONDS"), out double s) && s > 0 ? s : 0.5;
        int queues = int.TryParse(Environment.GetEnvironmentVariable("EDGEBLOCK_BENCH_QUEUES"), out int q) && q > 0 ? q : 1;
        bool inline = Environment.GetEnvironmentVariable("EDGEBLOCK_BENCH_INLINE") == "1";
        await using var t = TestTarget.Start(withNamespace: false);
        var device = t.AddNamespace(1, device: new NullBlockDevice(16L << 30, Block));
        await using var host = await t.ConnectAsync(ioQueues: queues, queueSize: 128, options: new NvmeConnectOptions { KatoMs = 0, InlineCompletions = inline });
        long blocks = device.BlockCount;

        // Warm up (JIT, pools), then measure.
        await RunAsync(host, blocks, TimeSpan.FromMilliseconds(200), seed: 1);
        long allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
        int gen0Before = GC.CollectionCount(0);
        var clock = Stopwatch.StartNew();
        long ios = await RunAsync(host, blocks, TimeSpan.FromSeconds(seconds), seed: 2);
        clock.Stop();
        long allocated = GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore;

        double iops = ios / clock.Elapsed.TotalSeconds;
        output.WriteLine($"4 KiB random read, QD{Depth} over {queues} I/O queue(s), null backend, loopback: " +
            $"{(inline ? "inline completions, " : "")}{ios} I/Os in {clock.Elapsed.TotalSeconds:F2} s = {iops:N0} IOPS ({iops * Block / (1 << 20):N0} MiB/s); " +
            $"process allocated {allocated / (double)ios:F1} B/I/O (target + initiator), gen0 GCs {GC.CollectionCount(0) - gen0Before}");
        Assert.True(ios > Depth, $"only {ios} I/Os completed");
        Assert.True(device.Reads >= ios);
    }

    private static async Task<long> RunAsync(NvmeController host, long blocks, TimeSpan duration, int seed)
    {
        long deadline = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        var workers = new Task<long>[Depth];
        for (int i = 0; i < Depth; i++) workers[i] = WorkerAsync(host, blocks, deadline, seed * 1000 + i);
        var counts = await Task.WhenAll(workers).WaitAsync(duration + TimeSpan.FromSeconds(30));
        return counts.Sum();
    }

    private static async Task<long> WorkerAsync(NvmeController host, long blocks, long deadline, int seed)
    {
        await Task.Yield();
        var random = new Random(seed);
        var buffer = GC.AllocateArray<byte>(Block, pinned: true);
        long done = 0;
        while (Stopwatch.GetTimestamp() < deadline)
        {
            var c = await host.ReadAsync(1, (ulong)random.NextInt64(blocks), 1, buffer);
            if (!c.IsSuccess) throw new InvalidOperationException($"read failed: {c}");
            done++;
        }
        return done;
    }
}
