using System.Diagnostics;
using EdgeBlock.Api;
using EdgeBlock.Api.Pools;
using EdgeBlock.Daemon;
using EdgeBlock.Daemon.Management;
using EdgeBlock.Initiator;
using EdgeBlock.Rbd.Tests.Support;

namespace EdgeBlock.Rbd.Tests;

/// <summary>A Ceph pool whose cluster is gone when the daemon starts: degraded, the rest serves, and it connects once the cluster is back.</summary>
[Collection(CephCollection.Name)]
public sealed class CephPoolReconnectTests(CephTestCluster ceph) : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "eb-cephre-" + Guid.NewGuid().ToString("N")[..12]);
    private EdgeBlockDaemon? _daemon;

    private EdgeBlockDaemon NewDaemon()
    {
        EdgeBlockDaemon daemon = CephDaemon.New(_dir, ceph.Directory);
        daemon.Pools.Ceph.OpTimeout = TimeSpan.FromSeconds(5);
        daemon.Pools.Ceph.ProbeInterval = TimeSpan.FromSeconds(1);
        daemon.Pools.Ceph.ProbeTimeout = TimeSpan.FromSeconds(2);
        return daemon;
    }

    private static void Script(string command, string directory)
    {
        (int exit, string output) = CephTestCluster.RunScript(command, directory);
        Assert.True(exit == 0, $"cluster.sh {command}: {output}");
    }

    [CephFact]
    public async Task CephPool_ClusterGoneAtStart_DaemonServesAndPoolConnectsWhenItIsBack()
    {
        string volume = CephTestCluster.NewImageName("re");
        _daemon = NewDaemon();
        await _daemon.StartAsync(CancellationToken.None);
        await _daemon.Pools.CreateAsync(new CreatePoolRequest("cp", null, Ceph: ceph.ConfPath, CephUser: "edgeblock", Keyring: ceph.KeyringPath));
        await _daemon.Pools.CreateVolumeAsync("cp", new CreateVolumeRequest(volume, "8M"));
        await _daemon.Pools.CreateAsync(new CreatePoolRequest("lp", ["lp.img:64M"]));
        await CephDaemon.StopAsync(_daemon);

        Script("kill-osd", ceph.Directory);
        Script("kill-mon", ceph.Directory);
        try
        {
            _daemon = NewDaemon();
            var started = Stopwatch.StartNew();
            await _daemon.StartAsync(CancellationToken.None);
            // One bounded probe per Ceph pool, not the client's mount timeout.
            Assert.InRange(started.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(4));
            PoolSummary down = _daemon.Pools.Show("cp");
            Assert.Equal("degraded", down.State);
            Assert.NotNull(down.Error);
            Assert.Equal("online", _daemon.Pools.Show("lp").State);
            await _daemon.Pools.CreateVolumeAsync("lp", new CreateVolumeRequest("local", "4M"));
            var refused = await Assert.ThrowsAsync<EdgeBlock.Volumes.VolumeException>(() => Task.Run(() => _daemon.Pools.GetVolume("cp", volume)));
            Assert.StartsWith("pool cp is degraded: ", refused.Message);
        }
        finally
        {
            Script("start-mon", ceph.Directory);
            Script("start-osd", ceph.Directory);
        }

        // No restart: the probes connect, the pool turns online, and its volume exports and serves I/O.
        var back = Stopwatch.StartNew();
        while (_daemon.Pools.Show("cp").State != "online")
        {
            Assert.True(back.Elapsed < TimeSpan.FromSeconds(60), $"pool cp is still degraded 60 s after its cluster came back: {_daemon.Pools.Show("cp").Error}");
            await Task.Delay(500);
        }
        string nqn = DaemonOptions.DefaultSubsystemNqn;
        await _daemon.Management.AddNamespaceAsync(nqn, new AddNamespaceRequest($"volume:cp/{volume}", Nsid: 2));
        await using NvmeController host = (await NvmeHost.ConnectAsync("127.0.0.1", _daemon.ListenEndPoint!.Port, nqn, NvmeHost.HostNqnFromId(Guid.NewGuid()))).EnsureSuccess();
        byte[] data = new byte[4096], read = new byte[4096];
        new Random(7).NextBytes(data);
        Assert.True((await host.WriteAsync(2, 3, 1, data, qid: 1)).IsSuccess);
        Assert.True((await host.FlushAsync(2, qid: 1)).IsSuccess);
        Assert.True((await host.ReadAsync(2, 3, 1, read, qid: 1)).IsSuccess);
        Assert.Equal(data, read);
        Assert.Equal(data, ceph.Export($"rbd/{volume}").AsSpan(3 * 4096, 4096).ToArray());
        await _daemon.Management.RemoveNamespaceAsync(nqn, 2);
        await _daemon.Pools.DeleteVolumeAsync("cp", volume);
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_daemon is not null) await CephDaemon.StopAsync(_daemon);
        // The cluster is shared with the other tests: whatever failed above, its monitor and OSD run again.
        CephTestCluster.RunScript("heal", ceph.Directory);
        Directory.Delete(_dir, recursive: true);
    }
}
