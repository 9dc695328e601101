using EdgeBlock.Initiator;
using EdgeBlock.Target.Tests.Support;

namespace EdgeBlock.Target.Tests;

/// <summary>Controller lifetime: keep alive, teardown when the admin queue goes.</summary>
public sealed class ControllerTests
{
    [Fact]
    public async Task KeepAlive_NoCommandsForKato_ControllerTornDownAndQueuesClosed()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 1, options: new NvmeConnectOptions { KatoMs = 1000, SendKeepAlives = false });
        ushort cntlid = host.Cntlid;
        Assert.Contains(t.Target.Controllers, c => c.Cntlid == cntlid);

        // Traffic-based keep alive checks every KATO; with no command in a whole period the controller goes.
        bool closed = await Waits.UntilAsync(() => !host.AdminQueue.IsOpen && !host.IoQueues[0].IsOpen, TimeSpan.FromSeconds(5));

        Assert.True(closed, "the target closes the admin and I/O queue connections");
        Assert.DoesNotContain(t.Target.Controllers, c => c.Cntlid == cntlid);
        await Assert.ThrowsAnyAsync<IOException>(async () => await host.KeepAliveAsync());
        await Assert.ThrowsAnyAsync<IOException>(async () => await host.ReadAsync(1, 0, 1, new byte[4096]));
    }

    [Fact]
    public async Task KeepAlive_HostSendsKeepAlives_ControllerOutlivesKato()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 1, options: new NvmeConnectOptions { KatoMs = 1000, SendKeepAlives = true });

        await Task.Delay(2500);

        Assert.True(host.AdminQueue.IsOpen);
        Assert.Contains(t.Target.Controllers, c => c.Cntlid == host.Cntlid);
        Assert.True((await host.ReadAsync(1, 0, 1, new byte[4096])).IsSuccess);
    }

    [Fact]
    public async Task AdminQueueClosed_ControllerDeletedAndIoQueuesClosed()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 2, options: new NvmeConnectOptions { KatoMs = 0 });
        ushort cntlid = host.Cntlid;

        await host.AdminQueue.DisposeAsync();

        Assert.True(await Waits.UntilAsync(() => host.IoQueues.All(q => !q.IsOpen), TimeSpan.FromSeconds(5)), "I/O queues close with the controller");
        Assert.DoesNotContain(t.Target.Controllers, c => c.Cntlid == cntlid);
    }

    [Fact]
    public async Task Connect_TwoHosts_GetDistinctControllers()
    {
        await using var t = TestTarget.Start();
        await using var a = await t.ConnectAsync(ioQueues: 1);
        await using var b = await t.ConnectAsync(ioQueues: 1, hostNqn: TestTarget.OtherHostNqn);

        Assert.NotEqual(a.Cntlid, b.Cntlid);
        Assert.Equal(2, t.Subsystem.Controllers.Count);
    }
}
