using EdgeBlock.Rbd.Tests.Support;

namespace EdgeBlock.Rbd.Tests;

[Collection(CephCollection.Name)]
public sealed class CephClusterTests(CephTestCluster ceph)
{
    [Fact]
    public void Connect_KeyringReadableByOthers_IsRefusedNamingTheMode()
    {
        string keyring = Path.Combine(Path.GetTempPath(), $"eb-keyring-{Guid.NewGuid():N}");
        File.WriteAllText(keyring, "[client.x]\n\tkey = AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\n");
        File.SetUnixFileMode(keyring, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);
        try
        {
            CephException refused = Assert.Throws<CephException>(() =>
                CephCluster.Connect(new CephConnectOptions("/nonexistent/ceph.conf", "rbd", "x", keyring)));

            Assert.Contains("has mode 0640", refused.Message);
            Assert.Contains("chmod 600", refused.Message);
            Assert.DoesNotContain("AQAA", refused.Message);
        }
        finally
        {
            File.Delete(keyring);
        }
    }

    [CephFact]
    public void Connect_AsTheRbdUser_OpensThePool()
    {
        using CephCluster cluster = CephCluster.Connect(ceph.Options());

        Assert.Equal("rbd", cluster.PoolName);
        Assert.NotNull(cluster.ListImages());
    }

    [CephFact]
    public void Connect_PoolTheUserMayNotUse_IsRefusedNamingPoolAndUser()
    {
        CephException refused = Assert.Throws<CephException>(() =>
            CephCluster.Connect(ceph.Options() with { Pool = "no-such-pool" }));

        Assert.Contains("opening Ceph pool 'no-such-pool'", refused.Message);
        Assert.Contains("client.edgeblock", refused.Message);
    }

    [CephFact]
    public void Connect_UnknownUser_FailsWithinTheTimeout()
    {
        string keyring = Path.Combine(ceph.Directory, $"ghost-{Guid.NewGuid():N}.keyring");
        File.WriteAllText(keyring, "[client.ghost]\n\tkey = AQBJ8lJlAAAAABAAf1F0nHh0bzzn5+K8yB0eRA==\n");
        File.SetUnixFileMode(keyring, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var started = System.Diagnostics.Stopwatch.StartNew();

        CephException refused = Assert.Throws<CephException>(() =>
            CephCluster.Connect(new CephConnectOptions(ceph.ConfPath, "rbd", "ghost", keyring) { OpTimeout = TimeSpan.FromSeconds(5) }));

        Assert.Contains("as client.ghost", refused.Message);
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(20), $"took {started.Elapsed}");
        File.Delete(keyring);
    }
}
