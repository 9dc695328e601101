using EdgeBlock.Initiator;
using EdgeBlock.Target.Tests.Support;

namespace EdgeBlock.Target.Tests;

/// <summary>serve --busy-poll: a connection reads without sleeping for a while after each batch (TcpQueue.PollReceive).</summary>
public class TcpBusyPollTests
{
    [Fact]
    public async Task BusyPoll_QueueDepthOne_ServesCommandsFromThePollAndReadsBackWhatWasWritten()
    {
        long polled = await RunQueueDepthOneAsync(TimeSpan.FromMilliseconds(1));
        // The host sends each command right after the previous completion, well within a millisecond, on most of them.
        Assert.True(polled > 0, "no command was received by busy polling");
    }

    [Fact]
    public async Task BusyPollOff_QueueDepthOne_NeverPolls()
    {
        long polled = await RunQueueDepthOneAsync(TimeSpan.Zero);
        Assert.Equal(0, polled);
    }

    /// <summary>200 writes then reads, one at a time, each checked; returns the receives busy polling served.</summary>
    private static async Task<long> RunQueueDepthOneAsync(TimeSpan busyPoll)
    {
        await using var t = TestTarget.Start(busyPoll: busyPoll);
        await using var host = await t.ConnectAsync(ioQueues: 1, queueSize: 32, options: new NvmeConnectOptions { KatoMs = 0 });
        var buffer = new byte[TestTarget.BlockSize];
        var read = new byte[TestTarget.BlockSize];
        const ushort Blocks = 1; // the namespace has 4 KiB blocks
        for (int i = 0; i < 200; i++)
        {
            ulong lba = (ulong)i * Blocks;
            Array.Fill(buffer, (byte)(i + 1));
            var w = await host.WriteAsync(1, lba, Blocks, buffer);
            Assert.True(w.IsSuccess, $"write {i}: {w}");
            var r = await host.ReadAsync(1, lba, Blocks, read);
            Assert.True(r.IsSuccess, $"read {i}: {r}");
            Assert.True(buffer.AsSpan().SequenceEqual(read), $"block {i} read back differently");
        }
        return t.Transport.Queues.Sum(q => Volatile.Read(ref q.PolledReceives));
    }
}
