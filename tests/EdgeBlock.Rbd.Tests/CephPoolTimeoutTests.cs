using System.Diagnostics;
using EdgeBlock.Api;
using EdgeBlock.Api.Pools;
using EdgeBlock.Daemon;
using EdgeBlock.Daemon.Management;
using EdgeBlock.Initiator;
using EdgeBlock.Nvme;
using EdgeBlock.Rbd.Tests.Support;
using EdgeBlock.Volumes;

namespace EdgeBlock.Rbd.Tests;

/// <summary>`pool create --ceph ... --timeout`: the pool's own client timeout, kept in its record.</summary>
[Collection(CephCollection.Name)]
public sealed class CephPoolTimeoutTests(CephTestCluster ceph) : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "eb-cephto-" + Guid.NewGuid().ToString("N")[..12]);
    private EdgeBlockDaemon _daemon = null!;

    private CreatePoolRequest Pool(int? timeoutSeconds) =>
        new("cp", null, Ceph: ceph.ConfPath, CephUser: "edgeblock", Keyring: ceph.KeyringPath, CephTimeoutSeconds: timeoutSeconds);

    [CephFact]
    public async Task CephPool_TimeoutOutOfRange_IsRefusedNamingTheRange()
    {
        foreach (int seconds in (int[])[0, 301])
        {
            VolumeException refused = await Assert.ThrowsAsync<VolumeException>(() => _daemon.Pools.CreateAsync(Pool(seconds)));
            Assert.Equal(VolumeError.Invalid, refused.Error);
            Assert.Equal("pool cp: --timeout must be 1 s to 300 s (it bounds every I/O and call to the cluster)", refused.Message);
        }
    }

    [CephFact]
    public async Task LocalPool_WithTimeout_IsRefused()
    {
        VolumeException refused = await Assert.ThrowsAsync<VolumeException>(() =>
            _daemon.Pools.CreateAsync(new CreatePoolRequest("lp", ["lp.img:64M"], CephTimeoutSeconds: 10)));
        Assert.Equal("pool lp: --timeout applies to a Ceph pool (--ceph): local drives have no client timeout", refused.Message);
    }

    [CephFact]
    public async Task CephPool_WithTimeout_IoFailsAfterItAndARestartKeepsIt()
    {
        string nqn = DaemonOptions.DefaultSubsystemNqn, volume = CephTestCluster.NewImageName("to");
        await _daemon.Pools.CreateAsync(Pool(3));
        Assert.EndsWith("as client.edgeblock, timeout 3 s", _daemon.Pools.Show("cp").Ceph);
        await _daemon.Pools.CreateVolumeAsync("cp", new CreateVolumeRequest(volume, "8M"));
        await _daemon.Management.AddNamespaceAsync(nqn, new AddNamespaceRequest($"volume:cp/{volume}", Nsid: 2));
        await using (NvmeController host = (await NvmeHost.ConnectAsync("127.0.0.1", _daemon.ListenEndPoint!.Port, nqn, NvmeHost.HostNqnFromId(Guid.NewGuid()))).EnsureSuccess())
        {
            byte[] data = new byte[4096];
            Assert.True((await host.WriteAsync(2, 0, 1, data, qid: 1)).IsSuccess);
            Assert.Equal(0, CephTestCluster.RunScript("kill-osd", ceph.Directory).Exit);
            try
            {
                var watch = Stopwatch.StartNew();
                NvmeCompletion write = await host.WriteAsync(2, 1, 1, data, qid: 1);
                // The pool's 3 s (librados checks its timeouts every few seconds), far below the default 30 s.
                Assert.InRange(watch.Elapsed, TimeSpan.FromSeconds(2.5), TimeSpan.FromSeconds(15));
                Assert.Equal(NvmeStatus.NamespaceNotReady, write.Status);
            }
            finally
            {
                (int exit, string output) = CephTestCluster.RunScript("start-osd", ceph.Directory);
                Assert.True(exit == 0, output);
            }
        }
        await _daemon.Management.RemoveNamespaceAsync(nqn, 2);

        await CephDaemon.StopAsync(_daemon);
        _daemon = await CephDaemon.StartAsync(_dir, ceph.Directory);
        Assert.EndsWith("as client.edgeblock, timeout 3 s", _daemon.Pools.Show("cp").Ceph);
    }

    public async Task InitializeAsync() => _daemon = await CephDaemon.StartAsync(_dir, ceph.Directory);

    public async Task DisposeAsync()
    {
        await CephDaemon.StopAsync(_daemon);
        CephTestCluster.RunScript("heal", ceph.Directory);
        Directory.Delete(_dir, recursive: true);
    }
}
