using System.Diagnostics;
using EdgeBlock.Api;
using EdgeBlock.Api.Pools;
using EdgeBlock.Daemon;
using EdgeBlock.Daemon.Management;
using EdgeBlock.Initiator;
using EdgeBlock.Rbd.Tests.Support;

namespace EdgeBlock.Rbd.Tests;

/// <summary>A Ceph pool whose cluster is gone: the daemon's other pools go on, `pool show` says degraded, and all resumes when it is back.</summary>
[Collection(CephCollection.Name)]
public sealed class CephPoolDegradedTests(CephTestCluster ceph) : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "eb-cephdeg-" + Guid.NewGuid().ToString("N")[..12]);
    private EdgeBlockDaemon _daemon = null!;

    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(1);

    private static async Task<TimeSpan> TimedAsync(Func<Task> call)
    {
        var watch = Stopwatch.StartNew();
        await call();
        return watch.Elapsed;
    }

    [CephFact]
    public async Task CephPool_OsdKilled_OtherPoolsGoOnShowSaysDegradedAndAllResumesWhenItIsBack()
    {
        string nqn = DaemonOptions.DefaultSubsystemNqn;
        _daemon.Pools.Ceph.OpTimeout = TimeSpan.FromSeconds(5);
        _daemon.Pools.Ceph.ProbeInterval = TimeSpan.FromMinutes(5); // only the probes `pool show` makes: the export below must meet the dead cluster itself
        _daemon.Pools.Ceph.ProbeTimeout = TimeSpan.FromSeconds(2);
        await _daemon.Pools.CreateAsync(new CreatePoolRequest("cp", null, Ceph: ceph.ConfPath, CephUser: "edgeblock", Keyring: ceph.KeyringPath));
        await _daemon.Pools.CreateAsync(new CreatePoolRequest("lp", ["lp.img:64M"]));
        await _daemon.Pools.CreateVolumeAsync("lp", new CreateVolumeRequest("local", "16M"));
        await _daemon.Management.AddNamespaceAsync(nqn, new AddNamespaceRequest("volume:lp/local", Nsid: 3));
        string[] volumes = [CephTestCluster.NewImageName("deg"), CephTestCluster.NewImageName("deg"), CephTestCluster.NewImageName("deg")];
        foreach (string v in volumes) await _daemon.Pools.CreateVolumeAsync("cp", new CreateVolumeRequest(v, "8M"));
        await _daemon.Management.AddNamespaceAsync(nqn, new AddNamespaceRequest($"volume:cp/{volumes[0]}", Nsid: 2));
        await using NvmeController host = (await NvmeHost.ConnectAsync("127.0.0.1", _daemon.ListenEndPoint!.Port, nqn, NvmeHost.HostNqnFromId(Guid.NewGuid()))).EnsureSuccess();
        byte[] data = new byte[4096];
        new Random(5).NextBytes(data);
        Assert.True((await host.WriteAsync(2, 0, 1, data, qid: 1)).IsSuccess);

        Assert.Equal(0, CephTestCluster.RunScript("kill-osd", ceph.Directory).Exit);
        try
        {
            // Opening an image for export (what a namespace or vhost export of it does) waits for the dead cluster while the local pool is used.
            Task<EdgeBlock.Daemon.Pools.VolumeExport> stuck = Task.Run(() => _daemon.Pools.Export("cp", volumes[1], null));
            await Task.Delay(300);
            Assert.False(stuck.IsCompleted, stuck.IsFaulted ? stuck.Exception!.InnerException!.Message : "completed");

            Assert.InRange(await TimedAsync(() => Task.FromResult(_daemon.Pools.GetVolume("lp", "local"))), TimeSpan.Zero, Prompt);
            Assert.InRange(await TimedAsync(() => _daemon.Pools.CreateVolumeAsync("lp", new CreateVolumeRequest("more", "4M"))), TimeSpan.Zero, Prompt);
            Assert.InRange(await TimedAsync(async () =>
            {
                Assert.True((await host.WriteAsync(3, 8, 1, data, qid: 1)).IsSuccess);
                Assert.True((await host.ReadAsync(3, 8, 1, new byte[4096], qid: 1)).IsSuccess);
            }), TimeSpan.Zero, Prompt);

            // pool show probes with a bounded wait: degraded, with the reason, within the probe timeout.
            var watch = Stopwatch.StartNew();
            PoolSummary shown = _daemon.Pools.Show("cp");
            Assert.InRange(watch.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(3));
            Assert.Equal("degraded", shown.State);
            Assert.Equal("the Ceph cluster did not answer within 2 s", shown.Error);
            Assert.Equal("online", _daemon.Pools.Show("lp").State);
            // Listing every volume leaves the degraded pool out instead of waiting for it.
            Assert.InRange(await TimedAsync(() => Task.FromResult(_daemon.Pools.ListVolumes(null))), TimeSpan.Zero, Prompt);
            EdgeBlock.Volumes.VolumeException refused = await Assert.ThrowsAsync<EdgeBlock.Volumes.VolumeException>(() => stuck);
            Assert.StartsWith($"opening RBD image rbd/{volumes[1]}: Connection timed out", refused.Message);
        }
        finally
        {
            (int exit, string output) = CephTestCluster.RunScript("start-osd", ceph.Directory);
            Assert.True(exit == 0, output);
        }

        // Back without a restart: show says online, management and I/O of the pool resume.
        var back = Stopwatch.StartNew();
        while (_daemon.Pools.Show("cp").State != "online")
        {
            Assert.True(back.Elapsed < TimeSpan.FromSeconds(60), "the pool stayed degraded after the OSD came back");
            await Task.Delay(500);
        }
        Assert.Null(_daemon.Pools.Show("cp").Error);
        Assert.True((await host.WriteAsync(2, 1, 1, data, qid: 1)).IsSuccess);
        await _daemon.Management.AddNamespaceAsync(nqn, new AddNamespaceRequest($"volume:cp/{volumes[2]}", Nsid: 5));
        Assert.True((await host.WriteAsync(5, 0, 1, data, qid: 1)).IsSuccess);
    }

    public async Task InitializeAsync()
    {
        _daemon = CephDaemon.New(_dir, ceph.Directory);
        await _daemon.StartAsync(CancellationToken.None);
    }

    public async Task DisposeAsync()
    {
        await _daemon.StopAsync(CancellationToken.None);
        await _daemon.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }
}
