using EdgeBlock.Rbd.Tests.Support;

namespace EdgeBlock.Rbd.Tests;

[Collection(CephCollection.Name)]
public sealed class RbdImageTests(CephTestCluster ceph)
{
    [CephFact]
    public async Task OpenExclusive_HeldByAnotherClient_IsRefusedNamingTheHolder()
    {
        await using OpenedImage first = OpenedImage.Create(ceph);
        // Another librados client, as a second daemon would be.
        using CephCluster second = CephCluster.Connect(ceph.Options());

        CephException refused = Assert.Throws<CephException>(() => second.OpenImage(first.Image.Name, exclusive: true));

        IReadOnlyList<string> owners = first.Image.LockOwners();
        Assert.Single(owners);
        Assert.Contains($"is locked by the client at {owners[0]}", refused.Message);
        Assert.Contains(owners[0], ceph.Rbd("lock", "ls", first.Image.Spec)); // the address rbd(8) shows for the holder
    }

    [CephFact]
    public void OpenExclusive_AfterTheHolderClosed_Succeeds()
    {
        using CephCluster cluster = CephCluster.Connect(ceph.Options());
        ceph.WithImage(cluster, "lock", 1 << 20, name =>
        {
            cluster.OpenImage(name, exclusive: true).Dispose();
            using CephCluster second = CephCluster.Connect(ceph.Options());

            using RbdImage image = second.OpenImage(name, exclusive: true);

            Assert.Single(image.LockOwners());
        });
    }

    [CephFact]
    public void CreateImage_ThenList_ShowsItAndRemoveDeletesIt()
    {
        using CephCluster cluster = CephCluster.Connect(ceph.Options());
        string name = CephTestCluster.NewImageName("mgmt");

        cluster.CreateImage(name, 3 << 20);
        Assert.Contains(name, cluster.ListImages());
        Assert.Contains(name, ceph.Rbd("ls", "rbd"));
        using (RbdImage image = cluster.OpenImage(name, exclusive: false))
        {
            Assert.Equal(3L << 20, image.Size);
        }

        cluster.RemoveImage(name);
        Assert.DoesNotContain(name, cluster.ListImages());
    }

    [CephFact]
    public void CreateImage_NameTaken_IsRefusedSayingSo()
    {
        using CephCluster cluster = CephCluster.Connect(ceph.Options());
        ceph.WithImage(cluster, "dup", 1 << 20, name =>
        {
            CephException refused = Assert.Throws<CephException>(() => cluster.CreateImage(name, 1 << 20));
            Assert.Equal($"RBD image rbd/{name} already exists", refused.Message);
        });
    }

    [CephFact]
    public void OpenImage_Missing_IsRefusedNamingIt()
    {
        using CephCluster cluster = CephCluster.Connect(ceph.Options());

        CephException refused = Assert.Throws<CephException>(() => cluster.OpenImage("no-such-image", exclusive: true));

        Assert.Equal("RBD image rbd/no-such-image does not exist", refused.Message);
    }

    [CephFact]
    public void Snapshots_CreateListRemove_AsRbdSeesThem()
    {
        using CephCluster cluster = CephCluster.Connect(ceph.Options());
        ceph.WithImage(cluster, "snap", 1 << 20, name =>
        {
            using RbdImage image = cluster.OpenImage(name, exclusive: true);
            image.CreateSnapshot("s1");
            image.CreateSnapshot("s2");
            Assert.Equal(["s1", "s2"], image.ListSnapshots());
            Assert.Contains("s2", ceph.Rbd("snap", "ls", $"rbd/{name}"));
            image.RemoveSnapshot("s1");
            image.RemoveSnapshot("s2");
            Assert.Empty(image.ListSnapshots());
        });
    }

    [CephFact]
    public void RemoveImage_WithSnapshots_IsRefusedSayingWhy()
    {
        using CephCluster cluster = CephCluster.Connect(ceph.Options());
        string name = CephTestCluster.NewImageName("rmsnap");
        cluster.CreateImage(name, 1 << 20);
        using (RbdImage image = cluster.OpenImage(name, exclusive: false))
        {
            image.CreateSnapshot("keep");
        }

        CephException refused = Assert.Throws<CephException>(() => cluster.RemoveImage(name));

        Assert.Contains("it has snapshots", refused.Message);
        using (RbdImage image = cluster.OpenImage(name, exclusive: false))
        {
            image.RemoveSnapshot("keep");
        }
        cluster.RemoveImage(name);
    }
}
