using EdgeBlock.Initiator;
using EdgeBlock.Storage;
using EdgeBlock.Target.Tests.Support;

namespace EdgeBlock.Target.Tests;

/// <summary>
/// The hot path must not allocate per I/O: after warm-up, 100k commands through the real TCP
/// transport (target and our initiator in this process) allocate less than one object per 1000 I/Os.
/// The smallest .NET object is 24 bytes, so a bound of 16 B per I/O fails on any per-I/O allocation.
/// </summary>
[Collection(BenchmarkCollection.Name)]
public sealed class HotPathAllocationTests
{
    private const int Depth = 32;
    private const int IosPerWorker = 100_000 / Depth + 1;
    private const double MaxBytesPerIo = 16;

    [ReleaseOnlyTheory]
    [InlineData(4096, false)]       // reads (C2HData)
    [InlineData(4096, true)]        // writes with in-capsule data
    [InlineData(65536, true)]       // writes over R2T + H2CData
    public async Task HundredThousandIos_AllocateLessThan16BytesPerIo(int blockBytes, bool write)
    {
        await using var t = TestTarget.Start(withNamespace: false);
        t.AddNamespace(1, device: new NullBlockDevice(1L << 30, 512));
        await using var host = await t.ConnectAsync(ioQueues: 2, queueSize: 128, options: new NvmeConnectOptions { KatoMs = 0 });

        var buffers = Enumerable.Range(0, Depth).Select(_ => GC.AllocateArray<byte>(blockBytes, pinned: true)).ToArray();
        await RunAsync(host, buffers, write, iosPerWorker: 500); // JIT, pools and slot buffers warm up
        using var sampler = new AllocationSampler();
        long before = GC.GetTotalAllocatedBytes(precise: true);
        long ios = await RunAsync(host, buffers, write, IosPerWorker);
        long allocated = GC.GetTotalAllocatedBytes(precise: true) - before;

        Assert.True(ios >= 100_000, $"only {ios} I/Os");
        double perIo = allocated / (double)ios;
        Assert.True(perIo < MaxBytesPerIo, $"{allocated} bytes for {ios} I/Os = {perIo:F1} B per I/O (bound {MaxBytesPerIo}); sampled: {sampler.Top()}");
    }

    private static async Task<long> RunAsync(NvmeController host, byte[][] buffers, bool write, int iosPerWorker)
    {
        var workers = new Task<long>[Depth];
        for (int i = 0; i < Depth; i++) workers[i] = WorkerAsync(host, buffers[i], write, iosPerWorker, i);
        var counts = await Task.WhenAll(workers).WaitAsync(TimeSpan.FromMinutes(2));
        return counts.Sum();
    }

    private static async Task<long> WorkerAsync(NvmeController host, byte[] buffer, bool write, int ios, int seed)
    {
        await Task.Yield();
        ushort blocks = (ushort)(buffer.Length / 512);
        ulong lba = (ulong)seed * 4096;
        for (int i = 0; i < ios; i++)
        {
            var c = write
                ? await host.WriteAsync(1, lba, blocks, buffer)
                : await host.ReadAsync(1, lba, blocks, buffer);
            if (!c.IsSuccess) throw new InvalidOperationException($"I/O failed: {c}");
        }
        return ios;
    }
}
