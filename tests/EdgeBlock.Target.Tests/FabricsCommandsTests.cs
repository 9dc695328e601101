using EdgeBlock.Initiator;
using EdgeBlock.Nvme;
using EdgeBlock.Target.Tests.Support;
using EdgeBlock.Transports.VhostUser.Tests;

namespace EdgeBlock.Target.Tests;

/// <summary>Connect and Property Get/Set, driven by the .NET initiator over NVMe/TCP.</summary>
public sealed class FabricsCommandsTests
{
    [Fact]
    public async Task Connect_AdminAndTwoIoQueues_CreatesOneControllerWithThreeQueues()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 2);

        Assert.NotEqual(0, host.Cntlid);
        Assert.True(host.Cntlid < 0xFFF0, "a dynamic controller ID is 1..FFEFh");
        Assert.Equal(2, host.IoQueues.Count);
        Assert.Equal(new ushort[] { 1, 2 }, host.IoQueues.Select(q => q.Qid));
        var controller = t.TargetController(host.Cntlid);
        Assert.Equal(TestTarget.HostNqn, controller.HostNqn);
        Assert.Equal(host.HostId, controller.HostId);
        Assert.Equal(new ushort[] { 0, 1, 2 }, controller.Queues.Select(q => q.Qid).Order());
        Assert.True(controller.IsReady);
    }

    [Fact]
    public async Task Connect_UnknownSubsysNqn_ReturnsConnectInvalidParameters()
    {
        await using var t = TestTarget.Start();
        var result = await t.TryConnectAsync(subsysNqn: "nqn.2024-01.io.edgeblock:no-such-subsystem");

        Assert.False(result.IsSuccess);
        Assert.Equal("Connect (admin queue)", result.FailedStep);
        Assert.Equal(StatusCodeType.CommandSpecific, result.Status.Sct);
        Assert.Equal(0x82, result.Status.Sc);
        // DW0: IPO (31:16) names the SUBNQN field of the Connect data, IATTR bit 0 says "in the data".
        Assert.Equal(Connect.SubsysNqnOffset, (ushort)(result.Completion.Dw0 >> 16));
        Assert.Equal(1u, result.Completion.Dw0 & 1);
        Assert.Empty(t.Target.Controllers);
    }

    [Fact]
    public async Task Connect_HostNotAllowed_ReturnsConnectInvalidHost()
    {
        await using var t = TestTarget.Start(allowAnyHost: false);
        t.Subsystem.AllowHost(TestTarget.OtherHostNqn);

        var result = await t.TryConnectAsync(hostNqn: TestTarget.HostNqn);

        Assert.False(result.IsSuccess);
        Assert.Equal(StatusCodeType.CommandSpecific, result.Status.Sct);
        Assert.Equal(0x84, result.Status.Sc);
        Assert.Empty(t.Target.Controllers);
    }

    [Fact]
    public async Task Connect_HostOnAccessList_Succeeds()
    {
        await using var t = TestTarget.Start(allowAnyHost: false);
        t.Subsystem.AllowHost(TestTarget.HostNqn);

        await using var host = await t.ConnectAsync(ioQueues: 1);

        Assert.Equal(TestTarget.HostNqn, t.TargetController(host.Cntlid).HostNqn);
    }

    [Fact]
    public async Task Connect_IoQueueWithUnknownCntlid_ReturnsConnectInvalidParameters()
    {
        await using var t = TestTarget.Start();

        var c = await ConnectIoQueueAsync(t, cntlid: 0x1234);

        Assert.Equal(NvmeStatus.ConnectInvalidParameters, c.Status);
        Assert.Equal(Connect.CntlidOffset, (ushort)(c.Dw0 >> 16));
    }

    [Fact]
    public async Task Connect_EmptyHostNqn_WhereAnyHostMay_Succeeds()
    {
        await using var t = TestTarget.Start();

        await using var host = await t.ConnectAsync(ioQueues: 1, hostNqn: "");

        Assert.Equal("", t.TargetController(host.Cntlid).HostNqn);
        Assert.True((await host.ReadAsync(nsid: 1, slba: 0, blocks: 1, new byte[TestTarget.BlockSize])).IsSuccess);
    }

    [Fact]
    public async Task Connect_EmptyHostNqn_WithAccessList_ReturnsConnectInvalidHost_AndLogsWhy()
    {
        var log = new ListLogger();
        await using var t = TestTarget.Start(allowAnyHost: false, logger: log);
        t.Subsystem.AllowHost(TestTarget.HostNqn);

        var result = await t.TryConnectAsync(hostNqn: "");

        Assert.Equal(NvmeStatus.ConnectInvalidHost, result.Status);
        Assert.Empty(t.Target.Controllers);
        Assert.True(log.Contains("connect refused") && log.Contains("(empty NQN)") && log.Contains("this subsystem has an access list"), log.ToString());
    }

    [Theory]
    [InlineData("unknown subsystem", "no such subsystem")]
    [InlineData("invalid host NQN", "the host NQN is not valid: ")]
    [InlineData("host not allowed", "the host is not on the subsystem's access list")]
    [InlineData("unknown controller", "controller 4660 is not this host's on this subsystem")]
    public async Task Connect_Refused_LogsTheReason(string refusal, string reason)
    {
        var log = new ListLogger();
        await using var t = TestTarget.Start(allowAnyHost: refusal != "host not allowed", logger: log);

        NvmeStatus status;
        if (refusal == "unknown controller")
        {
            status = (await ConnectIoQueueAsync(t, cntlid: 0x1234)).Status;
        }
        else
        {
            status = (await t.TryConnectAsync(
                subsysNqn: refusal == "unknown subsystem" ? "nqn.2024-01.io.edgeblock:no-such-subsystem" : TestTarget.SubsysNqn,
                hostNqn: refusal == "invalid host NQN" ? "not-an-nqn" : TestTarget.HostNqn)).Status;
        }

        Assert.False(status.IsSuccess);
        Assert.True(log.Lines.Count(l => l.Contains("connect refused", StringComparison.Ordinal)) == 1, log.ToString());
        Assert.True(log.Contains(reason), log.ToString());
    }

    /// <summary>An I/O queue Connect (qid 1) naming a controller, on a new connection of its own.</summary>
    private static async Task<NvmeCompletion> ConnectIoQueueAsync(TestTarget t, ushort cntlid)
    {
        await using var queue = await NvmeTcpQueue.ConnectAsync(TestTarget.Address, t.Port);
        var data = new byte[Connect.DataSize];
        Connect.WriteData(data, Guid.NewGuid(), cntlid, TestTarget.SubsysNqn, TestTarget.HostNqn);
        var sqe = new byte[SubmissionQueueEntry.Size];
        NvmeCommands.Connect(sqe, qid: 1, sqSize: 32, katoMs: 0);
        return await queue.SubmitAsync(sqe, data, TransferDirection.HostToController).Within();
    }

    [Fact]
    public async Task PropertyGet_CapVsCsts_ReportControllerRegisters()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 0);

        var cap = await host.PropertyGetAsync(ControllerProperties.Cap, wide: true);
        var vs = await host.PropertyGetAsync(ControllerProperties.Vs);
        var csts = await host.PropertyGetAsync(ControllerProperties.Csts);
        var cc = await host.PropertyGetAsync(ControllerProperties.Cc);

        Assert.True(cap.IsSuccess && vs.IsSuccess && csts.IsSuccess && cc.IsSuccess);
        Assert.Equal(t.Target.Limits.MaxQueueEntries, ControllerProperties.MaxQueueEntries(cap.Result)); // MQES + 1
        Assert.Equal(1UL, cap.Result >> 16 & 1);                                                            // CQR
        Assert.Equal((ulong)t.Target.Limits.ReadyTimeoutHalfSeconds, cap.Result >> 24 & 0xFF);             // TO
        Assert.Equal(1UL, cap.Result >> 37 & 1);                                                            // CSS: NVM command set
        Assert.Equal(ControllerProperties.Version14, vs.Dw0);
        Assert.Equal(ControllerProperties.CstsReady, csts.Dw0);
        Assert.Equal(ControllerProperties.CcEnableDefault, cc.Dw0);
        Assert.Equal(cap.Result, host.Cap);
    }

    [Fact]
    public async Task PropertyGet_CapAsFourBytes_ReturnsInvalidField()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 0);

        var c = await host.PropertyGetAsync(ControllerProperties.Cap, wide: false);

        Assert.Equal(NvmeStatus.InvalidField, c.Status);
    }

    [Fact]
    public async Task PropertySet_CcShutdown_ReportsShutdownComplete()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 1);
        var device = t.Device(1);
        long flushesBefore = device.Flushes;

        var c = await host.ShutdownAsync(TimeSpan.FromSeconds(5));

        Assert.True(c.IsSuccess, c.ToString());
        var csts = await host.PropertyGetAsync(ControllerProperties.Csts);
        Assert.Equal(2u, csts.Dw0 >> 2 & 3); // SHST = 10b: shutdown processing complete
        Assert.True(await Waits.UntilAsync(() => device.Flushes > flushesBefore, TimeSpan.FromSeconds(5)), "shutdown flushes the namespaces");
    }

    [Fact]
    public async Task PropertySet_CcShutdown_ReportsOccurringUntilTheFlushCompletes()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 1);
        var device = t.Device(1);
        var flushDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        device.FlushGate = flushDone.Task;
        var cc = await host.PropertyGetAsync(ControllerProperties.Cc);

        await host.PropertySetAsync(ControllerProperties.Cc, (uint)cc.Dw0 | ControllerProperties.CcShutdownNormal);
        var during = await host.PropertyGetAsync(ControllerProperties.Csts);
        flushDone.SetResult();
        bool completed = await Waits.UntilAsync(async () => ((await host.PropertyGetAsync(ControllerProperties.Csts)).Dw0 >> 2 & 3) == 2, TimeSpan.FromSeconds(5));

        Assert.Equal(1u, during.Dw0 >> 2 & 3); // SHST = 01b: shutdown processing occurring, the write cache is not yet durable
        Assert.True(completed, "SHST reaches 10b once the flush is done");
    }

    [Fact]
    public async Task PropertySet_CcEnableCleared_ResetsController()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 0);

        var c = await host.PropertySetAsync(ControllerProperties.Cc, 0);
        var csts = await host.PropertyGetAsync(ControllerProperties.Csts);
        var identify = await host.IdentifyControllerAsync();

        Assert.True(c.IsSuccess);
        Assert.Equal(0u, csts.Dw0 & ControllerProperties.CstsReady);
        Assert.Equal(NvmeStatus.CommandSequenceError, identify.Status); // admin commands need CSTS.RDY
    }
}
