using EdgeBlock.Api.Pools;
using EdgeBlock.Daemon;
using EdgeBlock.Storage.Tests.Support;
using EdgeBlock.Volumes;

namespace EdgeBlock.Management.Tests;

/// <summary>
/// The storage policy against a real daemon through the real CLI: each way a management client could reach
/// host files, the daemon's own files, data it must not overwrite or memory it cannot spare is refused with
/// exit 2 and a message naming the path and the rule; files under a storage root are taken.
/// </summary>
public sealed class StoragePolicyTests
{
    private const string Nqn = DaemonOptions.DefaultSubsystemNqn;

    private static void Ok(CliResult r) => r.AssertOk();

    private static void Refused(CliResult r, params string[] mentions) => r.AssertRefused(mentions);

    private static Task<CliResult> Cli(TestDaemon d, params string[] args) => d.CliAsync(args);

    [Fact]
    public async Task NamespaceAdd_HostFileOutsideDataDirectory_IsRefusedNamingPathAndRule()
    {
        await using var d = await TestDaemon.StartAsync();
        Refused(await Cli(d, "namespace", "add", Nqn, "--backend", "file:/etc/shadow"), "/etc/shadow", "must be under the data directory", "storage_roots");
        Assert.Null(d.Daemon.Target.FindSubsystem(Nqn)!.FindNamespace(2));
    }

    [Fact]
    public async Task NamespaceAdd_DotDotLeavingDataDirectory_IsRefused()
    {
        await using var d = await TestDaemon.StartAsync();
        Refused(await Cli(d, "namespace", "add", Nqn, "--backend", "file:../../../../../../../../etc/passwd"), "/etc/passwd", "must be under the data directory");
    }

    [Fact]
    public async Task NamespaceAdd_NewFileOutsideDataDirectory_IsRefusedAndNotCreated()
    {
        await using var d = await TestDaemon.StartAsync();
        string outside = Path.Combine(Path.GetTempPath(), $"eb-policy-{Guid.NewGuid():N}.img");
        Refused(await Cli(d, "namespace", "add", Nqn, "--backend", $"file:{outside}:1M"), outside, "must be under the data directory");
        Assert.False(File.Exists(outside));
    }

    [Fact]
    public async Task NamespaceAdd_DaemonConfigFile_IsRefusedAndTheDaemonStillRestarts()
    {
        await using var d = await TestDaemon.StartAsync();
        string before = await File.ReadAllTextAsync(d.ConfigPath);
        Refused(await Cli(d, "namespace", "add", Nqn, "--backend", "file:edgeblock.json:1M"), d.ConfigPath, "the daemon's config file");
        Assert.Equal(before, await File.ReadAllTextAsync(d.ConfigPath));
        await d.RestartAsync();
        Assert.NotNull(d.Daemon.Target.FindSubsystem(Nqn));
    }

    [Fact]
    public async Task NamespaceAdd_ApiSocketOrPoolMetadata_IsRefused()
    {
        await using var d = await TestDaemon.StartAsync();
        Refused(await Cli(d, "namespace", "add", Nqn, "--backend", "file:api.sock"), "the daemon's API socket");
        Ok(await Cli(d, "pool", "create", "p", Path.Combine(d.Directory, "drive.img:64M")));
        Refused(await Cli(d, "namespace", "add", Nqn, "--backend", "file:pools/p/CURRENT"), "pool metadata");
        Refused(await Cli(d, "namespace", "add", Nqn, "--backend", "file:drive.img"), "drive 0 of pool p");
    }

    [Fact]
    public async Task NamespaceAdd_MemoryBackendOverTheCap_IsRefused()
    {
        await using var d = await TestDaemon.StartAsync();
        Refused(await Cli(d, "namespace", "add", Nqn, "--backend", "memory:100T"), "memory backends would declare", "over the limit");
        Refused(await Cli(d, "namespace", "add", Nqn, "--backend", "memory:8191P"), "over the limit");
        Refused(await Cli(d, "namespace", "add", Nqn, "--backend", "memory:8192P"), "too large");
        Ok(await Cli(d, "namespace", "add", Nqn, "--backend", "memory:16M"));
    }

    [Fact]
    public async Task VhostAdd_HostFileBackend_IsRefused()
    {
        await using var d = await TestDaemon.StartAsync();
        Refused(await Cli(d, "vhost", "add", "--socket", Path.Combine(d.Directory, "vm.sock"), "--backend", "file:/etc/shadow"), "/etc/shadow", "must be under the data directory");
        Assert.False(File.Exists(Path.Combine(d.Directory, "vm.sock")));
    }

    [Fact]
    public async Task VhostAdd_SocketOutsideDataAndRuntimeDirectories_IsRefusedAndNotCreated()
    {
        await using var d = await TestDaemon.StartAsync();
        string socket = $"/etc/eb-{Guid.NewGuid():N}.sock";
        Refused(await Cli(d, "vhost", "add", "--socket", socket, "--backend", "memory:16M"), socket, "outside the data directory");
        Assert.False(File.Exists(socket));
    }

    [Fact]
    public async Task VhostAdd_SocketOnTheConfigFile_IsRefused()
    {
        await using var d = await TestDaemon.StartAsync();
        Refused(await Cli(d, "vhost", "add", "--socket", d.ConfigPath, "--backend", "memory:16M"), "the daemon's config file");
        Assert.True(File.Exists(d.ConfigPath));
    }

    [Fact]
    public async Task Import_NvmetcliDevicePathOutsideRoots_IsRefused()
    {
        await using var d = await TestDaemon.StartAsync();
        string file = Path.Combine(d.Directory, "nvmetcli.json");
        await File.WriteAllTextAsync(file, """
            {"hosts": [], "ports": [], "subsystems": [{"allowed_hosts": [], "attr": {"allow_any_host": "1"}, "nqn": "nqn.2024-05.com.example:leak",
              "namespaces": [{"device": {"path": "/etc/shadow", "uuid": "c0ffee00-1234-4abc-8def-0123456789ab", "nguid": "00000000-0000-0000-0000-000000000000"},
                              "enable": 1, "nsid": 1}]}]}
            """);
        Refused(await Cli(d, "config", "import", file), "/etc/shadow", "must be under the data directory", "nothing changed");
        Assert.Null(d.Daemon.Target.FindSubsystem("nqn.2024-05.com.example:leak"));
    }

    [Fact]
    public async Task Import_StorageRoots_IsRefused()
    {
        await using var d = await TestDaemon.StartAsync();
        string file = Path.Combine(d.Directory, "import.json");
        await File.WriteAllTextAsync(file, """{"version": 1, "storage_roots": ["/etc"], "listeners": [], "subsystems": [], "vhost": []}""");
        Refused(await Cli(d, "config", "import", file), "storage_roots", "cannot change the storage roots");
        Refused(await Cli(d, "namespace", "add", Nqn, "--backend", "file:/etc/shadow"), "must be under the data directory");
    }

    [Fact]
    public async Task PoolCreate_DriveIsTheConfigFile_IsRefusedAndTheConfigKept()
    {
        await using var d = await TestDaemon.StartAsync();
        string before = await File.ReadAllTextAsync(d.ConfigPath);
        Refused(await Cli(d, "pool", "create", "p", d.ConfigPath), d.ConfigPath, "the daemon's config file");
        Refused(await Cli(d, "pool", "create", "p", "/etc/passwd", "--force"), "/etc/passwd", "must be under the data directory");
        Assert.Equal(before, await File.ReadAllTextAsync(d.ConfigPath));
    }

    [Fact]
    public async Task PoolCreate_ExistingFileWithData_IsRefusedWithoutForceAndTakenWithIt()
    {
        await using var d = await TestDaemon.StartAsync();
        string drive = Path.Combine(d.Directory, "full.img");
        byte[] data = new byte[8 << 20];
        new Random(7).NextBytes(data);
        await File.WriteAllBytesAsync(drive, data);
        Refused(await Cli(d, "pool", "create", "p", drive), drive, "holds data", "--force");
        Assert.Equal(data.AsSpan(0, 4096).ToArray(), File.ReadAllBytes(drive).AsSpan(0, 4096).ToArray());
        Ok(await Cli(d, "pool", "create", "p", drive, "--force"));
    }

    [Fact]
    public async Task PoolCreate_FileWithFileSystemSignature_IsRefusedWithoutForce()
    {
        await using var d = await TestDaemon.StartAsync();
        string drive = Path.Combine(d.Directory, "ext4.img");
        await using (var f = File.Create(drive))
        {
            f.SetLength(64 << 20);
            f.Position = 1080;
            f.Write([0x53, 0xEF]);
        }
        Refused(await Cli(d, "pool", "create", "p", drive), "ext2/3/4 file system", "--force");
    }

    [Fact]
    public async Task PoolCreate_OnAFileANamespaceExports_IsBusyNotAnError()
    {
        await using var d = await TestDaemon.StartAsync();
        Ok(await Cli(d, "namespace", "add", Nqn, "--backend", "file:default.img:16M"));
        var e = await Assert.ThrowsAsync<VolumeException>(() => d.Daemon.Pools.CreateAsync(new CreatePoolRequest("p", ["default.img"], Force: true)));
        Assert.Equal(VolumeError.Busy, e.Error);
        Assert.Contains("backs namespace 2", e.Message);
    }

    /// <summary>A daemon and a directory outside its data directory (removed after the daemon stopped).</summary>
    private static async Task WithOutsideDirectoryAsync(Func<TestDaemon, string, Task> test)
    {
        await using var d = await TestDaemon.StartAsync();
        string root = Path.Combine(Path.GetTempPath(), $"eb-root-{Guid.NewGuid():N}");
        Directory.CreateDirectory(root);
        try
        {
            await test(d, root);
        }
        finally
        {
            await d.StopAsync();
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public Task NamespaceAdd_FileUnderAConfiguredStorageRoot_IsAccepted() => WithOutsideDirectoryAsync(async (d, root) =>
    {
        string image = Path.Combine(root, "vm.img");
        Refused(await Cli(d, "namespace", "add", Nqn, "--backend", $"file:{image}:16M"), "must be under the data directory");
        await d.AddStorageRootAsync(root);
        Ok(await Cli(d, "namespace", "add", Nqn, "--backend", $"file:{image}:16M"));
        Assert.True(File.Exists(image));
        Ok(await Cli(d, "pool", "create", "p", Path.Combine(root, "drive.img:64M")));
    });

    [Fact]
    public Task NamespaceAdd_SymlinkUnderARootLeadingOut_IsRefused() => WithOutsideDirectoryAsync(async (d, root) =>
    {
        await d.AddStorageRootAsync(root);
        File.CreateSymbolicLink(Path.Combine(root, "shadow.img"), "/etc/shadow");
        Directory.CreateSymbolicLink(Path.Combine(root, "etc"), "/etc");
        Refused(await Cli(d, "namespace", "add", Nqn, "--backend", $"file:{root}/shadow.img"), "leads to /etc/shadow", "must be under");
        Refused(await Cli(d, "namespace", "add", Nqn, "--backend", $"file:{root}/etc/eb-new.img:1M"), "leads to /etc/eb-new.img");
        Assert.False(File.Exists("/etc/eb-new.img"));
        File.CreateSymbolicLink(Path.Combine(d.Directory, "cfg.img"), d.ConfigPath);
        Refused(await Cli(d, "namespace", "add", Nqn, "--backend", "file:cfg.img"), "the daemon's config file");
    });

    [Fact]
    public async Task Start_HandEditedConfigExportingAHostFile_ServesTheRestWithoutIt()
    {
        await using var d = await TestDaemon.StartAsync();
        Ok(await Cli(d, "namespace", "add", Nqn, "--backend", "file:ok.img:16M"));
        await d.StopAsync();
        string text = await File.ReadAllTextAsync(d.ConfigPath);
        text = text.Replace("\"backend\": \"file:ok.img:16M\"", "\"backend\": \"file:/etc/shadow\"");
        Assert.Contains("/etc/shadow", text);
        await File.WriteAllTextAsync(d.ConfigPath, text);

        await d.RestartAsync();
        var subsystem = d.Daemon.Target.FindSubsystem(Nqn)!;
        Assert.NotNull(subsystem.FindNamespace(1));
        Assert.Null(subsystem.FindNamespace(2));
        // Still in the desired state: the administrator sees it and can remove it.
        var list = await Cli(d, "namespace", "list", Nqn, "--json");
        Assert.Contains("/etc/shadow", list.Output);
        Ok(await Cli(d, "namespace", "remove", Nqn, "2"));
        Ok(await Cli(d, "namespace", "add", Nqn, "--backend", "memory:16M"));
    }

    [Fact]
    public async Task Start_HandEditedVhostExportOfAHostFile_IsUnavailableAndNotServed()
    {
        await using var d = await TestDaemon.StartAsync();
        await d.StopAsync();
        string socket = Path.Combine(d.Directory, "vm.sock");
        var config = System.Text.Json.Nodes.JsonNode.Parse(await File.ReadAllTextAsync(d.ConfigPath))!.AsObject();
        config["vhost"] = new System.Text.Json.Nodes.JsonArray(new System.Text.Json.Nodes.JsonObject { ["socket"] = socket, ["backend"] = "file:/etc/shadow" });
        await File.WriteAllTextAsync(d.ConfigPath, config.ToJsonString());

        await d.RestartAsync();
        Assert.NotNull(d.Daemon.Target.FindSubsystem(Nqn)!.FindNamespace(1));
        var export = Assert.Single(d.Daemon.Management.VhostExports());
        Assert.Equal("unavailable", export.State);
        Assert.False(File.Exists(socket));
        Ok(await Cli(d, "vhost", "remove", socket));
    }

    [Fact]
    public async Task Reload_HandEditedConfigExportingAHostFile_IsRefused()
    {
        await using var d = await TestDaemon.StartAsync();
        Ok(await Cli(d, "namespace", "add", Nqn, "--backend", "file:ok.img:16M"));
        string text = await File.ReadAllTextAsync(d.ConfigPath);
        await File.WriteAllTextAsync(d.ConfigPath, text.Replace("\"backend\": \"file:ok.img:16M\"", "\"backend\": \"file:/etc/passwd\""));
        Refused(await Cli(d, "config", "reload"), "/etc/passwd", "must be under the data directory", "running state kept");
        Assert.NotNull(d.Daemon.Target.FindSubsystem(Nqn)!.FindNamespace(2));
    }

    [LoopDeviceFact]
    public async Task NamespaceAdd_LoopDeviceWithFileSystem_RefusedWithoutForce_AndMountedOneEvenWithForce()
    {
        await using var d = await TestDaemon.StartAsync();
        string backing = Path.Combine(d.Directory, "ext4.backing");
        using (var f = File.Create(backing)) f.SetLength(64 << 20);
        Commands.Run("mkfs.ext4", "-q", "-F", backing);
        using var loop = LoopDevice.Attach(backing);
        Refused(await Cli(d, "namespace", "add", Nqn, "--backend", $"file:{loop.Path}"), loop.Path, "ext2/3/4 file system", "--force");
        Refused(await Cli(d, "pool", "create", "p", loop.Path), loop.Path, "ext2/3/4 file system", "--force");

        string mountPoint = Path.Combine(d.Directory, "mnt");
        Directory.CreateDirectory(mountPoint);
        Commands.Run("mount", loop.Path, mountPoint);
        try
        {
            Refused(await Cli(d, "namespace", "add", Nqn, "--backend", $"file:{loop.Path}", "--force"), loop.Path, "in use", "mounted");
            Refused(await Cli(d, "pool", "create", "p", loop.Path, "--force"), loop.Path, "mounted");
        }
        finally
        {
            Commands.Run("umount", mountPoint);
        }
        Ok(await Cli(d, "namespace", "add", Nqn, "--backend", $"file:{loop.Path}", "--force"));
        Ok(await Cli(d, "namespace", "remove", Nqn, "2"));
    }
}
