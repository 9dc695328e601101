using System.Buffers.Binary;
using System.Text.Json;
using EdgeBlock.Initiator;
using EdgeBlock.Nvme;

namespace EdgeBlock.Management.Tests;

/// <summary>What the CLI configures is what an NVMe/TCP host sees, live: namespaces come and go with an async event.</summary>
public sealed class NvmeHostTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);
    private const string Vm2 = "nqn.2026-11.io.edgeblock:vm2";

    [Fact]
    public async Task NamespaceAddedViaCli_IsVisibleToHost_AndRemovingItWhileConnectedRaisesAer()
    {
        await using var d = await TestDaemon.StartAsync();
        string hostNqn = NvmeHost.HostNqnFromId(Guid.NewGuid());
        Assert.Equal(0, (await d.CliAsync("subsystem", "create", Vm2)).ExitCode);
        Assert.Equal(0, (await d.CliAsync("subsystem", "add-host", Vm2, hostNqn)).ExitCode);
        var ep = d.NvmeEndPoint;

        // Not on the list: refused at Connect.
        var refused = await NvmeHost.ConnectAsync(ep.Address.ToString(), ep.Port, Vm2, NvmeHost.HostNqnFromId(Guid.NewGuid()), ioQueues: 1);
        Assert.False(refused.IsSuccess);

        var added = await d.CliAsync("namespace", "add", Vm2, "--backend", "memory:16M", "--nsid", "2");
        Assert.True(added.ExitCode == 0, added.ToString());
        var connected = await NvmeHost.ConnectAsync(ep.Address.ToString(), ep.Port, Vm2, hostNqn, ioQueues: 1);
        await using var host = connected.Controller ?? throw new Xunit.Sdk.XunitException($"connect failed: {connected.FailedStep} {connected.Status}");

        var active = await host.IdentifyActiveNamespacesAsync();
        Assert.Equal([2u], active.Value!);
        var ns = (await host.IdentifyNamespaceAsync(2)).Value!;
        Assert.True(ns.IsActive);
        Assert.Equal((16L << 20) / 512, ns.Nsze);
        var listed = JsonDocument.Parse((await d.CliAsync("namespace", "list", Vm2, "--json")).Output).RootElement;
        Guid uuid = Assert.Single(listed.EnumerateArray()).GetProperty("uuid").GetGuid();
        Assert.Equal(uuid.ToByteArray(bigEndian: true), ns.Nguid);
        var block = new byte[512];
        block.AsSpan().Fill(0x5A);
        Assert.True((await host.WriteAsync(2, 7, 1, block)).IsSuccess);

        // The CLI shows the connected controller.
        var hosts = JsonDocument.Parse((await d.CliAsync("host", "list", "--json")).Output).RootElement;
        var me = Assert.Single(hosts.EnumerateArray(), h => h.GetProperty("host_nqn").GetString() == hostNqn);
        Assert.Equal(Vm2, me.GetProperty("subsystem").GetString());
        Assert.Equal(2, me.GetProperty("queues").GetInt32());
        Assert.StartsWith("127.0.0.1:", me.GetProperty("remote_address").GetString());
        var table = await d.CliAsync("host", "list");
        Assert.Contains(hostNqn, table.Output);

        Assert.True((await host.SetFeatureAsync(FeatureId.AsyncEventConfiguration, AsyncEvent.NamespaceAttributeNotices)).IsSuccess);
        var aer = host.AsyncEventRequestAsync().AsTask();
        Assert.True((await host.KeepAliveAsync()).IsSuccess); // admin commands run in order: the AER is parked now
        Assert.False(aer.IsCompleted);

        var removed = await d.CliAsync("namespace", "remove", Vm2, "2");
        Assert.True(removed.ExitCode == 0, removed.ToString());
        var evt = await aer.WaitAsync(Wait);

        Assert.True(evt.IsSuccess);
        Assert.Equal(0x040002u, evt.Dw0); // notice, namespace attribute changed, log page 04h
        var list = new byte[4096];
        Assert.True((await host.GetLogPageAsync(LogPageId.ChangedNamespaceList, list)).IsSuccess);
        Assert.Equal(2u, BinaryPrimitives.ReadUInt32LittleEndian(list));
        Assert.Empty((await host.IdentifyActiveNamespacesAsync()).Value!);
        Assert.False((await host.ReadAsync(2, 7, 1, block)).IsSuccess);
    }
}
