using System.CommandLine;

namespace EdgeBlock.Cli.Tests;

/// <summary>`pool create --ceph`: what the CLI refuses before asking the daemon (exit 1, usage).</summary>
public sealed class PoolCreateCephCliTests
{
    private static IReadOnlyList<string> Errors(params string[] args)
    {
        var root = ManagementCommands.CreateRoot();
        PoolCommands.AddTo(root);
        return root.Parse(["pool", "create", .. args]).Errors.Select(e => e.Message).ToList();
    }

    [Fact]
    public void PoolCreate_CephAndDrives_IsAUsageErrorSayingChooseOne()
    {
        Assert.Contains("give drives (PATH[:SIZE]...) or --ceph CONF, not both", Errors("site", "/tmp/d0.img:1G", "--ceph", "/etc/ceph/ceph.conf"));
        Assert.Contains("give drives (PATH[:SIZE]...) or --ceph CONF, not both", Errors("site"));
    }

    [Fact]
    public void PoolCreate_CephUserWithoutKeyring_IsAUsageError()
    {
        Assert.Contains("--ceph-user and --keyring go together", Errors("site", "--ceph", "/etc/ceph/ceph.conf", "--ceph-user", "edgeblock"));
    }

    [Fact]
    public void PoolCreate_CephWithUserAndKeyring_Parses()
    {
        Assert.Empty(Errors("site", "--ceph", "/etc/ceph/ceph.conf", "--ceph-pool", "vms", "--ceph-user", "edgeblock", "--keyring", "/etc/edgeblock/k"));
    }
}
