using EdgeBlock.Initiator;
using EdgeBlock.Nvme;
using EdgeBlock.Target.Tests.Support;

namespace EdgeBlock.Target.Tests;

/// <summary>
/// The command table is the one place an opcode is defined: what the controller advertises
/// (Commands Supported and Effects, ONCS) must be exactly what it executes.
/// </summary>
public sealed class CommandTableTests
{
    [Fact]
    public async Task EveryAdminOpcode_CompletesWithInvalidOpcode_ExactlyWhenTheEffectsLogDoesNotListIt()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 1);
        var log = await EffectsLogAsync(host);
        var supported = new List<byte>();

        for (int op = 0; op <= 0xFF; op++)
        {
            // Fabrics commands have their own table; a parked AER would never complete.
            if (op is (byte)AdminOpcode.FabricsCommand or (byte)AdminOpcode.AsyncEventRequest) continue;
            var c = await SubmitBareAsync(host, 0, (byte)op, nsid: 0);
            bool listed = CommandEffectsLog.ReadAdmin(log, (byte)op).HasFlag(CommandEffects.Supported);
            Assert.True(listed == (c.Status != NvmeStatus.InvalidOpcode), $"admin opcode {op:X2}h: listed {listed}, completed {c.Status}");
            if (listed) supported.Add((byte)op);
        }
        Assert.True(CommandEffectsLog.ReadAdmin(log, (byte)AdminOpcode.AsyncEventRequest).HasFlag(CommandEffects.Supported));
        Assert.Equal([0x02, 0x06, 0x08, 0x09, 0x0A, 0x18], supported);
    }

    [Fact]
    public async Task EveryNvmOpcode_CompletesWithInvalidOpcode_ExactlyWhenTheEffectsLogDoesNotListIt()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 1);
        var log = await EffectsLogAsync(host);
        var supported = new List<byte>();

        for (int op = 0; op <= 0xFF; op++)
        {
            if (op == (byte)NvmOpcode.FabricsCommand) continue;
            var c = await SubmitBareAsync(host, 1, (byte)op, nsid: 1);
            bool listed = CommandEffectsLog.ReadIo(log, (byte)op).HasFlag(CommandEffects.Supported);
            Assert.True(listed == (c.Status != NvmeStatus.InvalidOpcode), $"NVM opcode {op:X2}h: listed {listed}, completed {c.Status}");
            if (listed) supported.Add((byte)op);
        }
        Assert.Equal([0x00, 0x01, 0x02, 0x05, 0x08, 0x09], supported);
        // Commands that change data say so, so a host knows to invalidate what it cached.
        foreach (var op in new[] { NvmOpcode.Write, NvmOpcode.WriteZeroes, NvmOpcode.DatasetManagement })
            Assert.True(CommandEffectsLog.ReadIo(log, (byte)op).HasFlag(CommandEffects.LogicalBlockContentChange), op.ToString());
        foreach (var op in new[] { NvmOpcode.Read, NvmOpcode.Flush, NvmOpcode.Compare })
            Assert.False(CommandEffectsLog.ReadIo(log, (byte)op).HasFlag(CommandEffects.LogicalBlockContentChange), op.ToString());
    }

    [Fact]
    public async Task IdentifyController_Oncs_AnnouncesExactlyTheOptionalNvmCommandsTheEffectsLogLists()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 1);
        var log = await EffectsLogAsync(host);
        var id = (await host.IdentifyControllerAsync()).Value!;

        var pairs = new (OptionalNvmCommands Bit, NvmOpcode Opcode)[]
        {
            (OptionalNvmCommands.Compare, NvmOpcode.Compare),
            (OptionalNvmCommands.WriteUncorrectable, NvmOpcode.WriteUncorrectable),
            (OptionalNvmCommands.DatasetManagement, NvmOpcode.DatasetManagement),
            (OptionalNvmCommands.WriteZeroes, NvmOpcode.WriteZeroes),
        };
        foreach (var (bit, opcode) in pairs)
            Assert.True(((OptionalNvmCommands)id.Oncs).HasFlag(bit) == CommandEffectsLog.ReadIo(log, (byte)opcode).HasFlag(CommandEffects.Supported), bit.ToString());
        Assert.Equal(OptionalNvmCommands.Compare | OptionalNvmCommands.DatasetManagement | OptionalNvmCommands.WriteZeroes, (OptionalNvmCommands)id.Oncs);
    }

    [Fact]
    public async Task UnknownFabricsCommandType_CompletesWithInvalidOpcode_AndTheQueueGoesOn()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 1);
        var sqe = new byte[SubmissionQueueEntry.Size];
        var w = new SubmissionQueueEntryWriter(sqe) { Opcode = (byte)AdminOpcode.FabricsCommand, FabricsType = (FabricsCommandType)0x7E };

        var c = await host.SubmitAsync(0, sqe).AsTask().WaitAsync(Waits.Command);

        Assert.Equal(NvmeStatus.InvalidOpcode, c.Status);
        Assert.True((await host.KeepAliveAsync()).IsSuccess);
    }

    private static async Task<byte[]> EffectsLogAsync(NvmeController host)
    {
        var log = new byte[CommandEffectsLog.Size];
        var c = await host.GetLogPageAsync(LogPageId.CommandsSupportedAndEffects, log);
        Assert.True(c.IsSuccess, c.ToString());
        return log;
    }

    /// <summary>An SQE with only opcode and NSID set and no data: enough to tell "unknown opcode" from any other answer.</summary>
    private static Task<NvmeCompletion> SubmitBareAsync(NvmeController host, ushort qid, byte opcode, uint nsid)
    {
        var sqe = new byte[SubmissionQueueEntry.Size];
        _ = new SubmissionQueueEntryWriter(sqe) { Opcode = opcode, Nsid = nsid };
        return host.SubmitAsync(qid, sqe).AsTask().WaitAsync(Waits.Command);
    }
}
