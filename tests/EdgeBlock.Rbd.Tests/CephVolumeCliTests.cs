using System.Text.Json;
using EdgeBlock.Api;
using EdgeBlock.Daemon;
using EdgeBlock.Management.Tests;
using EdgeBlock.Rbd.Tests.Support;

namespace EdgeBlock.Rbd.Tests;

/// <summary>
/// `volume snapshot|clone|delete|adopt` on a Ceph pool through the real CLI (in-process) against a daemon on an API socket
/// (Management.Tests' TestDaemon, compiled in),
/// checked against what rbd(8) — a fresh librbd client — sees in the cluster.
/// </summary>
[Collection(CephCollection.Name)]
public sealed class CephVolumeCliTests(CephTestCluster ceph) : IAsyncLifetime
{
    private TestDaemon _daemon = null!;

    private async Task<string> Ok(params string[] args)
    {
        CliResult r = await _daemon.CliAsync(args);
        r.AssertOk();
        return r.Output;
    }

    private async Task<string> Refused(params string[] args)
    {
        CliResult r = await _daemon.CliAsync(args);
        r.AssertRefused();
        return r.Error;
    }

    private async Task<JsonElement> Json(params string[] args) => JsonDocument.Parse(await Ok([.. args, "--json"])).RootElement;

    /// <summary>Writes through a librbd client of the test's own, as a VM's guest would have before the snapshot.</summary>
    private async Task WriteAsync(string image, long lba, byte[] data)
    {
        using CephCluster cluster = CephCluster.Connect(ceph.Options());
        using RbdImage opened = cluster.OpenImage(image, exclusive: false);
        await using var device = new RbdBlockDevice(opened);
        Assert.Equal(EdgeBlock.Storage.BlockStatus.Success, await device.WriteAsync(lba, data, fua: true));
    }

    [CephFact]
    public async Task SnapshotCloneDelete_OnACephPool_AreRbdSnapshotsAndClones()
    {
        string v = CephTestCluster.NewImageName("v");
        string c = CephTestCluster.NewImageName("c");
        await Ok("volume", "create", $"cp/{v}", "--size", "16M");
        byte[] data = GC.AllocateArray<byte>(8192, pinned: true);
        new Random(3).NextBytes(data);
        await WriteAsync(v, 10, data);

        Assert.Contains($"snapshot cp/{v}@s1 taken", await Ok("volume", "snapshot", $"cp/{v}@s1"));
        Assert.Contains("protected: True", ceph.Rbd("info", $"rbd/{v}@s1"));
        await WriteAsync(v, 10, new byte[8192]); // the volume moves on; the snapshot and its clone keep what was there
        string cloned = await Ok("volume", "clone", $"cp/{v}@s1", $"cp/{c}");

        Assert.Contains($"volume cp/{c} cloned from {v}@s1", cloned);
        Assert.Contains($"parent: rbd/{v}@s1", ceph.Rbd("info", $"rbd/{c}"));
        Assert.Equal(data, ceph.Export($"rbd/{c}").AsSpan(10 * 4096, data.Length).ToArray());
        JsonElement volume = await Json("volume", "show", $"cp/{v}");
        JsonElement clone = await Json("volume", "show", $"cp/{c}");
        JsonElement snapshot = await Json("volume", "show", $"cp/{v}@s1");
        Assert.NotEqual(volume.GetProperty("uuid").GetString(), clone.GetProperty("uuid").GetString());
        Assert.NotEqual(volume.GetProperty("uuid").GetString(), snapshot.GetProperty("uuid").GetString());
        Assert.True(snapshot.GetProperty("is_snapshot").GetBoolean());
        Assert.Equal($"{v}@s1", clone.GetProperty("origin").GetString());
        Assert.Contains((await Json("volume", "list", "cp")).EnumerateArray(), e => e.GetProperty("name").GetString() == $"{v}@s1");

        // Deleting goes leaf first, each refusal naming what is in the way.
        Assert.Contains($"volume cp/{v} has snapshots (s1); delete them first (edgeblock volume delete cp/{v}@s1)", await Refused("volume", "delete", $"cp/{v}"));
        Assert.Contains($"snapshot rbd/{v}@s1 has clones", await Refused("volume", "delete", $"cp/{v}@s1"));
        await Ok("volume", "delete", $"cp/{c}");
        await Ok("volume", "delete", $"cp/{v}@s1");
        await Ok("volume", "delete", $"cp/{v}");
        string images = ceph.Rbd("ls", "rbd");
        Assert.DoesNotContain(v, images);
        Assert.DoesNotContain(c, images);
    }

    [CephFact]
    public async Task Snapshot_OfAnExportedCephVolume_IsTakenThroughTheExportsLock()
    {
        string v = CephTestCluster.NewImageName("x");
        await Ok("volume", "create", $"cp/{v}", "--size", "8M");
        await _daemon.Daemon.Management.AddNamespaceAsync(DaemonOptions.DefaultSubsystemNqn, new AddNamespaceRequest($"volume:cp/{v}", Nsid: 2));

        await Ok("volume", "snapshot", $"cp/{v}@live");

        Assert.Contains("live", ceph.Rbd("snap", "ls", $"rbd/{v}"));
        await _daemon.Daemon.Management.RemoveNamespaceAsync(DaemonOptions.DefaultSubsystemNqn, 2);
        await Ok("volume", "delete", $"cp/{v}@live");
        await Ok("volume", "delete", $"cp/{v}");
    }

    [CephFact]
    public async Task Adopt_AnExistingRbdImage_BecomesTheVolumeUnderItsNewNameWithItsData()
    {
        string image = CephTestCluster.NewImageName("ext");
        string volume = CephTestCluster.NewImageName("adopted");
        ceph.Rbd("create", "--size", "8M", $"rbd/{image}");
        byte[] data = GC.AllocateArray<byte>(4096, pinned: true);
        new Random(8).NextBytes(data);
        await WriteAsync(image, 3, data);

        string adopted = await Ok("volume", "adopt", $"cp/{volume}", "--image", image);

        Assert.Contains($"volume cp/{volume} adopted from RBD image {image}: 8 MiB", adopted);
        string images = ceph.Rbd("ls", "rbd");
        Assert.Contains(volume, images);
        Assert.DoesNotContain(image, images);
        JsonElement shown = await Json("volume", "show", $"cp/{volume}");
        Assert.Equal(ceph.Rbd("image-meta", "get", $"rbd/{volume}", "edgeblock.uuid").Trim(), shown.GetProperty("uuid").GetString());
        Assert.Equal(data, ceph.Export($"rbd/{volume}").AsSpan(3 * 4096, 4096).ToArray());
        Assert.Contains($"RBD image rbd/{image} does not exist", await Refused("volume", "adopt", "cp/again", "--image", image));
        await Ok("volume", "delete", $"cp/{volume}");
    }

    public async Task InitializeAsync()
    {
        _daemon = await TestDaemon.StartAsync();
        await _daemon.AddStorageRootAsync(ceph.Directory);
        await Ok("pool", "create", "cp", "--ceph", ceph.ConfPath, "--ceph-user", "edgeblock", "--keyring", ceph.KeyringPath);
    }

    public async Task DisposeAsync() => await _daemon.DisposeAsync();
}
