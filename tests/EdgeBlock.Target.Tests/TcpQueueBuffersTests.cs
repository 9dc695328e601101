using EdgeBlock.Storage;
using EdgeBlock.Target.Tests.Support;

namespace EdgeBlock.Target.Tests;

/// <summary>
/// NVMe/TCP data buffers under the memory budget (TcpQueue.Buffers.cs): commands wait for the budget instead of
/// failing or allocating, and command slots follow the queue size the host asked for.
/// </summary>
public sealed class TcpQueueBuffersTests
{
    private const int LargeBytes = 128 * 1024;

    [Fact]
    public async Task TinyBudget_Qd128MixedWritesAndReads_CompleteVerifiedWithinBudget()
    {
        // 1 MiB holds 8 transfers of 128 KiB; the host keeps 128 in flight over two queues, with in-capsule
        // writes (4 and 16 KiB) among the R2T ones so receive loops stop while writes wait for their data.
        // Without the parked renters' reserve (ParkedKeepFreeBytes = 0) this deadlocks and times out (checked).
        using var buffers = new DataBufferPool(1 << 20, LargeBytes);
        await using var t = TestTarget.Start(buffers: buffers);
        await using var host = await t.ConnectAsync(ioQueues: 2, queueSize: 128);

        var workers = Enumerable.Range(0, 128).Select(i => WriteReadVerifyAsync(host, i)).ToArray();
        await Task.WhenAll(workers).WaitAsync(TimeSpan.FromMinutes(1));

        Assert.True(buffers.PeakInUseBytes <= buffers.BudgetBytes, $"peak {buffers.PeakInUseBytes} above the budget");
        Assert.True(buffers.Waits > 0, "the load never reached the budget: the test proves nothing");
        Assert.True(await Waits.UntilAsync(() => buffers.InUseBytes == 0, TimeSpan.FromSeconds(5)), $"{buffers.InUseBytes} bytes still rented after the load");
        Assert.True(buffers.MappedBytes <= buffers.BudgetBytes);
    }

    private static async Task WriteReadVerifyAsync(Initiator.NvmeController host, int worker)
    {
        await Task.Yield();
        int bytes = (worker % 3) switch { 0 => LargeBytes, 1 => 16 * 1024, _ => 4096 };
        ulong lba = (ulong)worker * (LargeBytes / TestTarget.BlockSize);
        var readBack = new byte[bytes];
        for (int round = 0; round < 3; round++)
        {
            var data = TestData.Pattern(bytes, worker * 10 + round);
            var written = await host.WriteAsync(1, lba, bytes / TestTarget.BlockSize, data);
            Assert.True(written.IsSuccess, $"write of worker {worker}: {written}");
            var read = await host.ReadAsync(1, lba, bytes / TestTarget.BlockSize, readBack);
            Assert.True(read.IsSuccess, $"read of worker {worker}: {read}");
            Assert.True(data.AsSpan().SequenceEqual(readBack), $"worker {worker} read back other data");
        }
    }

    [Fact]
    public async Task Connect_Sqsize32_QueueGetsTwiceAsManySlots()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 1, queueSize: 32);

        var io = t.Transport.Queues.Single(q => q.QueuePair.Qid == 1);
        Assert.Equal(32, io.QueuePair.Entries);
        // Twice the entries, as nvmet: a slot is freed only after its data left, when the host may already reuse the command.
        Assert.Equal(64, io.SlotCount);
    }
}
