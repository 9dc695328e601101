using EdgeBlock.Initiator;
using EdgeBlock.Nvme;
using EdgeBlock.Target.Tests.Support;

namespace EdgeBlock.Target.Tests;

/// <summary>The NVM command set end to end: initiator → NVMe/TCP → target → memory namespace and back.</summary>
public sealed class IoCommandsTests
{
    private const uint Nsid = 1;
    private const int Block = TestTarget.BlockSize;

    [Theory]
    [InlineData(4 * 1024, 1)]
    [InlineData(128 * 1024, 2)]
    public async Task WriteThenRead_ReturnsWrittenData(int bytes, int seed)
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 2);
        var data = TestData.Pattern(bytes, seed);
        var back = new byte[bytes];

        var w = await host.WriteAsync(Nsid, 100, bytes / Block, data);
        var r = await host.ReadAsync(Nsid, 100, bytes / Block, back);

        Assert.True(w.IsSuccess, w.ToString());
        Assert.True(r.IsSuccess, r.ToString());
        Assert.Equal(data, back);
    }

    [Fact]
    public async Task Write_4KiB_TravelsInCapsule()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 1);
        var stats = host.IoQueues[0].Statistics;
        long r2ts = stats.R2TsReceived, inCapsule = stats.InCapsuleWrites;

        var w = await host.WriteAsync(Nsid, 0, 1, TestData.Pattern(Block, 3));

        Assert.True(w.IsSuccess);
        Assert.Equal(inCapsule + 1, stats.InCapsuleWrites);
        Assert.Equal(r2ts, stats.R2TsReceived);
    }

    [Fact]
    public async Task Write_128KiB_WaitsForR2TThenSendsH2CData()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 1);
        var queue = host.IoQueues[0];
        var stats = queue.Statistics;
        long r2ts = stats.R2TsReceived, h2c = stats.H2CDataPdusSent, inCapsule = stats.InCapsuleWrites;
        var data = TestData.Pattern(128 * 1024, 4);

        var w = await host.WriteAsync(Nsid, 32, 32, data);

        Assert.True(w.IsSuccess);
        Assert.Equal(r2ts + 1, stats.R2TsReceived);
        Assert.Equal(inCapsule, stats.InCapsuleWrites);
        Assert.Equal(h2c + (128 * 1024 + queue.MaxH2CDataBytes - 1) / queue.MaxH2CDataBytes, stats.H2CDataPdusSent);
        var back = new byte[data.Length];
        Assert.True((await host.ReadAsync(Nsid, 32, 32, back)).IsSuccess);
        Assert.Equal(data, back);
    }

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public async Task WriteThenRead_WithDigests_ReturnsWrittenData(bool headerDigest, bool dataDigest)
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 2, headerDigest: headerDigest, dataDigest: dataDigest);
        Assert.All(host.IoQueues.Append(host.AdminQueue), q => Assert.Equal((headerDigest, dataDigest), (q.HeaderDigest, q.DataDigest)));

        foreach (int bytes in new[] { 4 * 1024, 16 * 1024, 128 * 1024 })
        {
            var data = TestData.Pattern(bytes, bytes);
            var back = new byte[bytes];
            var w = await host.WriteAsync(Nsid, 1000, bytes / Block, data);
            var r = await host.ReadAsync(Nsid, 1000, bytes / Block, back);
            Assert.True(w.IsSuccess, $"{bytes}: {w}");
            Assert.True(r.IsSuccess, $"{bytes}: {r}");
            Assert.Equal(data, back);
        }
    }

    [Fact]
    public async Task Write_Fua_ReachesDeviceAsFua()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 1);
        var device = t.Device(Nsid);

        var plain = await host.WriteAsync(Nsid, 0, 1, new byte[Block], fua: false);
        var fua = await host.WriteAsync(Nsid, 1, 1, new byte[Block], fua: true);

        Assert.True(plain.IsSuccess && fua.IsSuccess);
        Assert.Equal(2, device.Writes);
        Assert.Equal(1, device.FuaWrites);
    }

    [Fact]
    public async Task Flush_OneNamespaceOrAll_FlushesDevices()
    {
        await using var t = TestTarget.Start();
        var second = t.AddNamespace(2);
        await using var host = await t.ConnectAsync(ioQueues: 1);
        var first = t.Device(Nsid);

        var one = await host.FlushAsync(Nsid);
        Assert.Equal((1L, 0L), (first.Flushes, second.Flushes));
        var all = await host.FlushAsync(NvmeCommands.AllNamespaces);

        Assert.True(one.IsSuccess && all.IsSuccess);
        Assert.Equal((2L, 1L), (first.Flushes, second.Flushes));
    }

    [Fact]
    public async Task WriteZeroes_Range_ReadsBackZeroes()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 1);
        var data = TestData.Pattern(8 * Block, 5);
        Assert.True((await host.WriteAsync(Nsid, 200, 8, data)).IsSuccess);

        var wz = await host.WriteZeroesAsync(Nsid, 202, 3);
        var back = new byte[8 * Block];
        Assert.True((await host.ReadAsync(Nsid, 200, 8, back)).IsSuccess);

        Assert.True(wz.IsSuccess);
        Assert.Equal(data.AsSpan(0, 2 * Block), back.AsSpan(0, 2 * Block));
        Assert.True(back.AsSpan(2 * Block, 3 * Block).IndexOfAnyExcept((byte)0) < 0);
        Assert.Equal(data.AsSpan(5 * Block), back.AsSpan(5 * Block));
    }

    [Fact]
    public async Task Deallocate_Range_ReadsBackZeroes()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 1);
        var data = TestData.Pattern(64 * Block, 6);
        Assert.True((await host.WriteAsync(Nsid, 0, 32, data.AsMemory(0, 32 * Block))).IsSuccess);
        Assert.True((await host.WriteAsync(Nsid, 32, 32, data.AsMemory(32 * Block))).IsSuccess);

        var dsm = await host.DeallocateAsync(Nsid, [(16UL, 16u), (40UL, 8u)]);
        var back = new byte[64 * Block];
        Assert.True((await host.ReadAsync(Nsid, 0, 32, back.AsMemory(0, 32 * Block))).IsSuccess);
        Assert.True((await host.ReadAsync(Nsid, 32, 32, back.AsMemory(32 * Block))).IsSuccess);

        Assert.True(dsm.IsSuccess);
        Assert.Equal(2, t.Device(Nsid).Deallocates);
        Assert.Equal(data.AsSpan(0, 16 * Block), back.AsSpan(0, 16 * Block));
        Assert.True(back.AsSpan(16 * Block, 16 * Block).IndexOfAnyExcept((byte)0) < 0);
        Assert.Equal(data.AsSpan(32 * Block, 8 * Block), back.AsSpan(32 * Block, 8 * Block));
        Assert.True(back.AsSpan(40 * Block, 8 * Block).IndexOfAnyExcept((byte)0) < 0);
        Assert.Equal(data.AsSpan(48 * Block), back.AsSpan(48 * Block));
    }

    [Fact]
    public async Task Deallocate_RangeBeyondEnd_ReturnsLbaOutOfRangeAndFreesNothing()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 1);
        ulong lastBlock = TestTarget.NamespaceBytes / Block - 1;

        var dsm = await host.DeallocateAsync(Nsid, [(0UL, 1u), (lastBlock, 2u)]);

        Assert.Equal(NvmeStatus.LbaOutOfRange, dsm.Status);
        Assert.Equal(0, t.Device(Nsid).Deallocates);
    }

    [Fact]
    public async Task Compare_MatchingData_Succeeds()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 1);
        var data = TestData.Pattern(2 * Block, 7);
        Assert.True((await host.WriteAsync(Nsid, 10, 2, data)).IsSuccess);

        var c = await host.CompareAsync(Nsid, 10, 2, data);

        Assert.True(c.IsSuccess, c.ToString());
    }

    [Fact]
    public async Task Compare_DifferentData_ReturnsCompareFailure()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 1);
        var data = TestData.Pattern(2 * Block, 8);
        Assert.True((await host.WriteAsync(Nsid, 10, 2, data)).IsSuccess);
        var other = (byte[])data.Clone();
        other[Block + 17] ^= 1;

        var c = await host.CompareAsync(Nsid, 10, 2, other);

        Assert.Equal(StatusCodeType.MediaAndDataIntegrity, c.Status.Sct);
        Assert.Equal(0x85, c.Status.Sc);
    }

    [Fact]
    public async Task Read_LbaOutOfRange_ReturnsLbaOutOfRange()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 1);
        ulong blocks = TestTarget.NamespaceBytes / Block;

        var past = await host.ReadAsync(Nsid, blocks, 1, new byte[Block]);
        var straddling = await host.ReadAsync(Nsid, blocks - 1, 2, new byte[2 * Block]);
        var write = await host.WriteAsync(Nsid, blocks - 1, 2, new byte[2 * Block]);

        Assert.All(new[] { past, straddling, write }, c => Assert.Equal(NvmeStatus.LbaOutOfRange, c.Status));
        Assert.Equal(0x80, past.Status.Sc);
        Assert.Equal(0, t.Device(Nsid).Writes);
    }

    [Fact]
    public async Task Read_InvalidNamespace_ReturnsInvalidNamespace()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 1);

        var c = await host.ReadAsync(9, 0, 1, new byte[Block]);

        Assert.Equal(StatusCodeType.Generic, c.Status.Sct);
        Assert.Equal(0x0B, c.Status.Sc);
    }

    [Fact]
    public async Task IoCommand_InvalidOpcode_ReturnsInvalidOpcode()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 1);
        var sqe = new byte[SubmissionQueueEntry.Size];
        _ = new SubmissionQueueEntryWriter(sqe) { Opcode = 0x7E, Nsid = Nsid };

        var c = await host.SubmitAsync(1, sqe).Within();

        Assert.Equal(NvmeStatus.InvalidOpcode, c.Status);
    }

    [Fact]
    public async Task Read_BeyondMdts_ReturnsInvalidField()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 1);
        int blocks = (int)(host.MaxTransferBytes / Block) + 1;

        var r = await host.ReadAsync(Nsid, 0, blocks, new byte[blocks * Block]);

        Assert.Equal(NvmeStatus.InvalidField, r.Status);
        Assert.Equal(0, host.IoQueues[0].Statistics.C2HDataPdusReceived);
    }

    [Fact]
    public async Task Write_BeyondMdts_ReturnsInvalidFieldWithoutR2T()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 1);
        int blocks = (int)(host.MaxTransferBytes / Block) + 1;

        var w = await host.WriteAsync(Nsid, 0, blocks, new byte[blocks * Block]);

        Assert.Equal(NvmeStatus.InvalidField, w.Status);
        Assert.Equal(0, host.IoQueues[0].Statistics.R2TsReceived);
        Assert.Equal(0, t.Device(Nsid).Writes);
        // The queue is still in step: the next command works.
        Assert.True((await host.FlushAsync(Nsid, 1)).IsSuccess);
    }

    [Fact]
    public async Task Read_SglLengthNotMatchingBlocks_ReturnsDataSglLengthInvalid()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 1);

        var r = await host.ReadAsync(Nsid, 0, 2, new byte[Block]); // 2 blocks, a 1-block buffer

        Assert.Equal(NvmeStatus.DataSglLengthInvalid, r.Status);
    }

    [Fact]
    public async Task ConcurrentIo_Qd32OverTwoQueues_EveryBlockReadsBackItsData()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 2, queueSize: 64);
        const int depth = 32, rounds = 8;
        // Each of the 32 workers owns its LBAs; sizes alternate between in-capsule and R2T writes.
        var workers = Enumerable.Range(0, depth).Select(async worker =>
        {
            for (int round = 0; round < rounds; round++)
            {
                int blocks = (worker + round) % 3 == 0 ? 8 : 1;
                ulong slba = (ulong)(worker * 256 + round * 16);
                var data = TestData.Pattern(blocks * Block, worker * 100 + round);
                var w = await host.WriteAsync(Nsid, slba, blocks, data);
                Assert.True(w.IsSuccess, w.ToString());
                var back = new byte[data.Length];
                var r = await host.ReadAsync(Nsid, slba, blocks, back);
                Assert.True(r.IsSuccess, r.ToString());
                Assert.Equal(data, back);
            }
        });

        await Task.WhenAll(workers).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.All(host.IoQueues, q => Assert.True(q.Statistics.CapsulesSent > depth * rounds / 2, $"queue {q.Qid} carried its share"));
        Assert.Equal(depth * rounds, t.Device(Nsid).Writes);
    }

    [Fact]
    public async Task ConcurrentIo_MoreCommandsThanQueueEntries_WaitForFreeSlotsAndAllComplete()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 1, queueSize: 4);
        var data = TestData.Pattern(64 * Block, 12);

        var writes = Enumerable.Range(0, 64).Select(i => host.WriteAsync(Nsid, (ulong)i, 1, data.AsMemory(i * Block, Block)).AsTask()).ToList();
        var completions = await Task.WhenAll(writes).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.All(completions, c => Assert.True(c.IsSuccess, c.ToString()));
        var back = new byte[data.Length];
        Assert.True((await host.ReadAsync(Nsid, 0, 32, back.AsMemory(0, 32 * Block))).IsSuccess);
        Assert.True((await host.ReadAsync(Nsid, 32, 32, back.AsMemory(32 * Block))).IsSuccess);
        Assert.Equal(data, back);
    }

    [Fact]
    public async Task Read_SqFlowControlDisabled_CompletesWithC2HDataSuccess()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 1, options: new NvmeConnectOptions { DisableSqFlowControl = true });
        var data = TestData.Pattern(4 * Block, 9);
        Assert.True((await host.WriteAsync(Nsid, 0, 4, data)).IsSuccess);
        var stats = host.IoQueues[0].Statistics;
        long responses = stats.ResponsesReceived;

        var back = new byte[data.Length];
        var r = await host.ReadAsync(Nsid, 0, 4, back);

        Assert.True(r.IsSuccess);
        Assert.Equal(data, back);
        Assert.Equal(1, stats.SuccessFlagCompletions);
        Assert.Equal(responses, stats.ResponsesReceived); // no CapsuleResp for the read
    }

    [Fact]
    public async Task Read_SqFlowControlEnabled_CompletesWithCapsuleResp()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 1);

        var r = await host.ReadAsync(Nsid, 0, 1, new byte[Block]);

        Assert.True(r.IsSuccess);
        Assert.Equal(0, host.IoQueues[0].Statistics.SuccessFlagCompletions);
        Assert.Equal((ushort)1, r.SqId);
        Assert.NotEqual((ushort)0, r.SqHead);
    }
}
