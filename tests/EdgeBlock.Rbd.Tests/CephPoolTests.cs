using EdgeBlock.Api;
using EdgeBlock.Api.Pools;
using EdgeBlock.Daemon;
using EdgeBlock.Daemon.Management;
using EdgeBlock.Daemon.Pools;
using EdgeBlock.Initiator;
using EdgeBlock.Rbd.Tests.Support;
using EdgeBlock.Volumes;

namespace EdgeBlock.Rbd.Tests;

/// <summary>The Ceph pool kind in the daemon: RBD images as volumes, exported over NVMe/TCP like any volume.</summary>
[Collection(CephCollection.Name)]
public sealed class CephPoolTests(CephTestCluster ceph) : IAsyncLifetime
{
    private readonly List<(EdgeBlockDaemon Daemon, string Directory)> _daemons = [];

    // The test cluster's conf and keyring live in its directory under /var/tmp: a storage root, as an operator would configure it.
    private EdgeBlockDaemon NewDaemon(string dir) => CephDaemon.New(dir, ceph.Directory);

    private async Task<EdgeBlockDaemon> StartDaemonAsync()
    {
        string dir = Path.Combine(Path.GetTempPath(), "eb-ceph-" + Guid.NewGuid().ToString("N")[..12]);
        EdgeBlockDaemon daemon = NewDaemon(dir);
        _daemons.Add((daemon, dir));
        await daemon.StartAsync(CancellationToken.None);
        return daemon;
    }

    private CreatePoolRequest CephPool(string name) => new(name, null, Ceph: ceph.ConfPath, CephUser: "edgeblock", Keyring: ceph.KeyringPath);

    [CephFact]
    public async Task VolumeOnCephPool_ExportedOverNvmeTcp_FlushedWritesAreInTheCluster()
    {
        EdgeBlockDaemon daemon = await StartDaemonAsync();
        PoolSummary pool = await daemon.Pools.CreateAsync(CephPool("cp"));
        Assert.Equal("ceph", pool.Kind);
        string volume = CephTestCluster.NewImageName("vol");
        await daemon.Pools.CreateVolumeAsync("cp", new CreateVolumeRequest(volume, "16M"));
        await daemon.Management.AddNamespaceAsync(DaemonOptions.DefaultSubsystemNqn, new AddNamespaceRequest($"volume:cp/{volume}", Nsid: 2));
        Assert.True(daemon.Pools.GetVolume("cp", volume).Exported);

        var data = new byte[64 << 10];
        new Random(9).NextBytes(data);
        await using (NvmeController host = (await NvmeHost.ConnectAsync("127.0.0.1", daemon.ListenEndPoint!.Port, DaemonOptions.DefaultSubsystemNqn,
            NvmeHost.HostNqnFromId(Guid.NewGuid()))).EnsureSuccess())
        {
            Assert.True((await host.WriteAsync(2, 100, 16, data, qid: 1)).IsSuccess);
            Assert.True((await host.FlushAsync(2, qid: 1)).IsSuccess);
            var back = new byte[data.Length];
            Assert.True((await host.ReadAsync(2, 100, 16, back, qid: 1)).IsSuccess);
            Assert.Equal(data, back);
        }

        // A fresh librbd client (rbd export) sees what the Flush acknowledged.
        Assert.Equal(data, ceph.Export($"rbd/{volume}").AsSpan(100 * 4096, data.Length).ToArray());

        // Deleting an exported volume is refused; after the namespace is gone it works.
        VolumeException busy = await Assert.ThrowsAsync<VolumeException>(() => daemon.Pools.DeleteVolumeAsync("cp", volume));
        Assert.Contains("is exported", busy.Message);
        await daemon.Management.RemoveNamespaceAsync(DaemonOptions.DefaultSubsystemNqn, 2);
        await daemon.Pools.DeleteVolumeAsync("cp", volume);
        Assert.DoesNotContain(volume, ceph.Rbd("ls", "rbd"));
    }

    [CephFact]
    public async Task SecondDaemon_ExportingTheSameVolume_IsRefusedNamingTheHolder()
    {
        EdgeBlockDaemon first = await StartDaemonAsync();
        await first.Pools.CreateAsync(CephPool("cp"));
        string volume = CephTestCluster.NewImageName("two");
        await first.Pools.CreateVolumeAsync("cp", new CreateVolumeRequest(volume, "4M"));
        await first.Management.AddNamespaceAsync(DaemonOptions.DefaultSubsystemNqn, new AddNamespaceRequest($"volume:cp/{volume}", Nsid: 2));
        EdgeBlockDaemon second = await StartDaemonAsync();
        await second.Pools.CreateAsync(CephPool("same"));

        ManagementException refused = await Assert.ThrowsAsync<ManagementException>(() =>
            second.Management.AddNamespaceAsync(DaemonOptions.DefaultSubsystemNqn, new AddNamespaceRequest($"volume:same/{volume}", Nsid: 2)));

        Assert.Contains($"RBD image rbd/{volume} is locked by the client at", refused.Message);
        Assert.Equal(409, refused.Status);
        await first.Management.RemoveNamespaceAsync(DaemonOptions.DefaultSubsystemNqn, 2);
        await first.Pools.DeleteVolumeAsync("cp", volume);
    }

    [CephFact]
    public async Task CreatePool_CephNamesWithControlCharactersOrTooLong_AreRefusedNamingTheOption()
    {
        EdgeBlockDaemon daemon = await StartDaemonAsync();

        VolumeException pool = await Assert.ThrowsAsync<VolumeException>(() =>
            daemon.Pools.CreateAsync(CephPool("bad1") with { CephPool = "rbd\0other" }));
        VolumeException user = await Assert.ThrowsAsync<VolumeException>(() =>
            daemon.Pools.CreateAsync(CephPool("bad2") with { CephUser = new string('u', 300) }));

        Assert.Equal("pool bad1: --ceph-pool must be 1 to 256 printable characters", pool.Message);
        Assert.Equal("pool bad2: --ceph-user must be 1 to 256 printable characters", user.Message);
        Assert.DoesNotContain(daemon.Pools.List(), p => p.Name is "bad1" or "bad2");
    }

    [CephFact]
    public async Task CreateVolume_AskingWhatRbdCannotGive_IsRefusedWithTheReason()
    {
        EdgeBlockDaemon daemon = await StartDaemonAsync();
        await daemon.Pools.CreateAsync(CephPool("cp"));

        VolumeException group = await Assert.ThrowsAsync<VolumeException>(() =>
            daemon.Pools.CreateVolumeAsync("cp", new CreateVolumeRequest("g", "4M", Group: "t1")));
        VolumeException reserve = await Assert.ThrowsAsync<VolumeException>(() =>
            daemon.Pools.CreateVolumeAsync("cp", new CreateVolumeRequest("r", "4M", Reserve: "1M")));

        Assert.Equal("volume cp/g: a Ceph pool does not offer group quotas (--group): use a Ceph pool quota (ceph osd pool set-quota) instead", group.Message);
        Assert.Contains("reservations", reserve.Message);
        Assert.Throws<VolumeException>(() => daemon.Pools.ListGroups("cp"));
    }

    [CephFact]
    public async Task CephPool_AfterRestart_IsOpenedAgainWithItsVolumes()
    {
        EdgeBlockDaemon daemon = await StartDaemonAsync();
        await daemon.Pools.CreateAsync(CephPool("cp"));
        string volume = CephTestCluster.NewImageName("keep");
        Guid uuid = (await daemon.Pools.CreateVolumeAsync("cp", new CreateVolumeRequest(volume, "4M"))).Uuid;
        string dir = _daemons[^1].Directory;
        await daemon.StopAsync(CancellationToken.None);
        await daemon.DisposeAsync();
        _daemons.RemoveAt(_daemons.Count - 1);

        await using EdgeBlockDaemon again = NewDaemon(dir);
        await again.StartAsync(CancellationToken.None);

        Assert.Equal("online", again.Pools.Show("cp").State);
        Assert.Equal(uuid, again.Pools.GetVolume("cp", volume).Uuid);
        Assert.DoesNotContain(File.ReadAllText(Path.Combine(dir, "pools", "cp", CephPools.RecordFile)), File.ReadAllText(ceph.KeyringPath).Split('=', 2)[1].Trim());
        await again.Pools.DeleteVolumeAsync("cp", volume);
        await again.StopAsync(CancellationToken.None);
        Directory.Delete(dir, recursive: true);
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach ((EdgeBlockDaemon daemon, string dir) in _daemons)
        {
            await daemon.StopAsync(CancellationToken.None);
            await daemon.DisposeAsync();
            Directory.Delete(dir, recursive: true);
        }
    }
}
