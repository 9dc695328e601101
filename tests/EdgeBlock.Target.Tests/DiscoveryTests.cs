using EdgeBlock.Initiator;
using EdgeBlock.Nvme;
using EdgeBlock.Target.Tests.Support;

namespace EdgeBlock.Target.Tests;

/// <summary>The discovery controller and its log page (70h), as nvme discover reads it.</summary>
public sealed class DiscoveryTests
{
    [Fact]
    public async Task Discover_ListsSubsystemAndCurrentDiscoveryController()
    {
        await using var t = TestTarget.Start();

        var result = await NvmeHost.DiscoverAsync(TestTarget.Address, t.Port, TestTarget.HostNqn).Within();

        Assert.True(result.IsSuccess, result.Status.ToString());
        var log = result.Value!;
        Assert.Equal(t.Target.DiscoveryGenctr, log.Genctr);
        Assert.Equal(2, log.Entries.Count);
        var nvm = Assert.Single(log.Entries, e => e.Subtype == DiscoveryLog.SubtypeNvm);
        Assert.Equal(TestTarget.SubsysNqn, nvm.SubNqn);
        Assert.Equal(DiscoveryLog.TrtypeTcp, nvm.Trtype);
        Assert.Equal(DiscoveryLog.AdrfamIpv4, nvm.Adrfam);
        Assert.Equal(TestTarget.Address, nvm.Traddr);
        Assert.Equal(t.Port.ToString(), nvm.Trsvcid);
        Assert.Equal(Connect.DynamicCntlid, nvm.Cntlid);
        var self = Assert.Single(log.Entries, e => e.Subtype == DiscoveryLog.SubtypeCurrentDiscovery);
        Assert.Equal(Nqn.Discovery, self.SubNqn);
    }

    [Fact]
    public async Task Discover_HostNotOnAccessList_OmitsSubsystem()
    {
        await using var t = TestTarget.Start(allowAnyHost: false);
        var open = new Subsystem("nqn.2024-01.io.edgeblock:open", allowAnyHost: true);
        t.Target.AddSubsystem(open);
        t.Subsystem.AllowHost(TestTarget.OtherHostNqn);

        var refused = await NvmeHost.DiscoverAsync(TestTarget.Address, t.Port, TestTarget.HostNqn).Within();
        var allowed = await NvmeHost.DiscoverAsync(TestTarget.Address, t.Port, TestTarget.OtherHostNqn).Within();

        Assert.Equal(new[] { "nqn.2024-01.io.edgeblock:open" }, NvmNqns(refused.Value!));
        Assert.Equal(new[] { "nqn.2024-01.io.edgeblock:open", TestTarget.SubsysNqn }, NvmNqns(allowed.Value!));
    }

    [Fact]
    public async Task DiscoveryController_IdentifyController_ReportsDiscoveryType()
    {
        await using var t = TestTarget.Start();
        var connected = await NvmeHost.ConnectAsync(TestTarget.Address, t.Port, Nqn.Discovery, TestTarget.HostNqn, ioQueues: 0,
            options: new NvmeConnectOptions { KatoMs = 0 }).Within();
        await using var discovery = connected.EnsureSuccess();

        Assert.True(discovery.IsDiscovery);
        Assert.Equal(Nqn.Discovery, discovery.Identify.SubsystemNqn);
        Assert.Empty(discovery.IoQueues);
        Assert.Throws<InvalidOperationException>(() => { _ = discovery.ReadAsync(1, 0, 1, new byte[4096]); });
        var ns = await discovery.IdentifyNamespaceAsync(1);
        Assert.Equal(NvmeStatus.InvalidField, ns.Status);
    }

    [Fact]
    public async Task Discover_SubsystemAdded_BumpsGenerationCounter()
    {
        await using var t = TestTarget.Start();
        var before = await NvmeHost.DiscoverAsync(TestTarget.Address, t.Port, TestTarget.HostNqn).Within();

        t.Target.AddSubsystem(new Subsystem("nqn.2024-01.io.edgeblock:later"));
        var after = await NvmeHost.DiscoverAsync(TestTarget.Address, t.Port, TestTarget.HostNqn).Within();

        Assert.True(after.Value!.Genctr > before.Value!.Genctr);
        Assert.Equal(3, after.Value.Entries.Count);
    }

    private static string[] NvmNqns(DiscoveryLogPage log) =>
        log.Entries.Where(e => e.Subtype == DiscoveryLog.SubtypeNvm).Select(e => e.SubNqn).Order(StringComparer.Ordinal).ToArray();
}
