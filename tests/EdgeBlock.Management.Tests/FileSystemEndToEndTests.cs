using System.Net;

namespace EdgeBlock.Management.Tests;

/// <summary>
/// `edgeblock fs create|list|remove` through the real daemon and CLI on this machine (no ublk_drv): refusals name the
/// problem and leave nothing behind — no volume, no config entry. Making and mounting for real is the guest scenario.
/// </summary>
public sealed class FileSystemEndToEndTests : IDisposable
{
    /// <summary>Mount points live outside the daemon's data directory (which refuses them).</summary>
    private readonly string _mounts = Directory.CreateTempSubdirectory("edgeblock-fs-mounts-").FullName;

    public void Dispose() => Directory.Delete(_mounts, recursive: true);

    private static void Ok(CliResult r) => Assert.True(r.ExitCode == 0, r.ToString());

    private static async Task<TestDaemon> DaemonWithPoolAsync()
    {
        var d = await TestDaemon.StartAsync();
        Ok(await d.CliAsync("pool", "create", "p1", $"{Path.Combine(d.Directory, "d0.img")}:64M"));
        return d;
    }

    private static async Task AssertNothingKeptAsync(TestDaemon d)
    {
        var volumes = await d.CliAsync("volume", "list", "--json");
        Ok(volumes);
        Assert.DoesNotContain("\"fs1\"", volumes.Output);
        var list = await d.CliAsync("fs", "list", "--json");
        Ok(list);
        Assert.Equal("[]", list.Output.Trim());
        Assert.DoesNotContain("fs1", await File.ReadAllTextAsync(d.ConfigPath));
    }

    [Fact]
    public async Task Create_MountPointNotAnEmptyDirectory_IsRefusedNamingIt_AndNothingIsKept()
    {
        await using var d = await DaemonWithPoolAsync();
        string dir = Path.Combine(_mounts, "srv-log");
        Directory.CreateDirectory(dir);
        await File.WriteAllTextAsync(Path.Combine(dir, "old.log"), "x");

        (await d.CliAsync("fs", "create", "p1/fs1", "--size", "16M", "--mount", dir)).AssertRefused($"mount point {dir} is not an empty directory");
        string file = Path.Combine(dir, "old.log");
        (await d.CliAsync("fs", "create", "p1/fs1", "--size", "16M", "--mount", file)).AssertRefused(file);
        (await d.CliAsync("fs", "create", "p1/fs1", "--size", "16M", "--mount", "srv/log")).AssertRefused("not an absolute path");
        await AssertNothingKeptAsync(d);
    }

    [Fact]
    public async Task Create_MountPointInASystemTreeOrTheDataDirectory_IsRefusedWhereItLeads_AndNothingIsKept()
    {
        await using var d = await DaemonWithPoolAsync();
        (await d.CliAsync("fs", "create", "p1/fs1", "--size", "16M", "--mount", "/etc/edgeblock-new")).AssertRefused("/etc, a system directory");
        (await d.CliAsync("fs", "create", "p1/fs1", "--size", "16M", "--mount", "/")).AssertRefused("the root directory");
        // A link out of an allowed place is judged where it leads.
        string link = Path.Combine(_mounts, "to-usr");
        File.CreateSymbolicLink(link, "/usr/local");
        (await d.CliAsync("fs", "create", "p1/fs1", "--size", "16M", "--mount", Path.Combine(link, "new"))).AssertRefused("leads to /usr/local/new", "/usr");
        (await d.CliAsync("fs", "create", "p1/fs1", "--size", "16M", "--mount", Path.Combine(d.Directory, "mnt"))).AssertRefused("data directory");
        Assert.False(Directory.Exists("/etc/edgeblock-new"));
        await AssertNothingKeptAsync(d);
    }

    [Fact]
    public async Task Create_BadInput_IsRefusedNamingTheProblem_AndNothingIsKept()
    {
        await using var d = await DaemonWithPoolAsync();
        string dir = Path.Combine(_mounts, "empty");

        (await d.CliAsync("fs", "create", "p1/fs1", "--size", "16M", "--mount", dir, "--fs", "btrfs")).AssertRefused("btrfs", "ext4, xfs");
        (await d.CliAsync("fs", "create", "nosuch/fs1", "--size", "16M", "--mount", dir)).AssertRefused("nosuch");
        (await d.CliAsync("fs", "create", "p1/fs1", "--size", "12Q", "--mount", dir, "--group", "g")).AssertRefused("size");
        (await d.CliAsync("fs", "create", "p1", "--size", "16M", "--mount", dir)).AssertRefused("POOL/NAME");
        (await d.CliAsync("fs", "remove", "p1/fs1")).AssertRefused("not a file system of this host");
        using var http = d.CreateHttpClient();
        var missing = await http.DeleteAsync("http://edgeblock/v1/host/filesystems");
        Assert.Equal(HttpStatusCode.BadRequest, missing.StatusCode);
        await AssertNothingKeptAsync(d);
    }

    [Fact]
    public async Task Create_WithoutUblk_IsRefusedNamingTheModule_AndTheVolumeMadeForItIsDeleted()
    {
        if (File.Exists("/dev/ublk-control")) return; // this kernel has ublk: the guest scenario covers making file systems
        await using var d = await DaemonWithPoolAsync();
        string dir = Path.Combine(_mounts, "empty");

        (await d.CliAsync("fs", "create", "p1/fs1", "--size", "16M", "--mount", dir)).AssertRefused("ublk_drv");
        await AssertNothingKeptAsync(d);
        Assert.False(Directory.Exists(dir)); // made only to mount on
    }
}
