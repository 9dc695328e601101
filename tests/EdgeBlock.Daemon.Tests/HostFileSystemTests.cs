using EdgeBlock.Daemon.Management;

namespace EdgeBlock.Daemon.Tests;

/// <summary>`fs create`'s refusals before anything is made: file system type, its mkfs tool, the mount point; and the config's rules.</summary>
public sealed class HostFileSystemTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("edgeblock-fs-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void TypeRefusal_MkfsNotInTheDirectories_NamesTheToolAndItsPackage()
    {
        string? why = HostFileSystem.TypeRefusal("xfs", [_dir]);
        Assert.NotNull(why);
        Assert.Contains("mkfs.xfs is not installed", why);
        Assert.Contains("xfsprogs", why);
    }

    [Fact]
    public void TypeRefusal_MkfsPresent_IsNull()
    {
        File.WriteAllText(Path.Combine(_dir, "mkfs.ext4"), "");
        Assert.Null(HostFileSystem.TypeRefusal("ext4", [_dir]));
    }

    [Fact]
    public void TypeRefusal_UnknownType_NamesItAndTheChoices() =>
        Assert.Equal("file system 'btrfs' is not one of ext4, xfs", HostFileSystem.TypeRefusal("btrfs", [_dir]));

    [Fact]
    public void MountPointRefusal_NotEmptyDirectory_NamesIt()
    {
        File.WriteAllText(Path.Combine(_dir, "log.txt"), "x");
        Assert.Equal($"mount point {_dir} is not an empty directory", HostFileSystem.MountPointRefusal(_dir));
    }

    [Fact]
    public void MountPointRefusal_FileRelativeOrMissing_IsNamed()
    {
        string file = Path.Combine(_dir, "f");
        File.WriteAllText(file, "");
        Assert.Contains($"mount point {file} is not an empty directory", HostFileSystem.MountPointRefusal(file));
        Assert.Contains("not an absolute path", HostFileSystem.MountPointRefusal("srv/log"));
        Assert.Contains("not an absolute path", HostFileSystem.MountPointRefusal("/srv/../etc"));
        Assert.Contains("--mount", HostFileSystem.MountPointRefusal(null));
    }

    [Theory]
    [InlineData("/etc/cron.new", "/etc")]
    [InlineData("/usr/lib/x", "/usr")]
    [InlineData("/proc/x", "/proc")]
    [InlineData("/run/edgeblock/m", "/run")]
    public void MountPointRefusal_InASystemTree_NamesTheTree(string dir, string tree) =>
        Assert.Equal($"mount point {dir} is in {tree}, a system directory; choose one elsewhere (e.g. under /srv, /var/lib or /persist)",
            HostFileSystem.MountPointRefusal(dir));

    [Fact]
    public void MountPointRefusal_InTheDataDirectory_IsNamed() =>
        Assert.Contains("the daemon's data directory", HostFileSystem.MountPointRefusal(Path.Combine(_dir, "mnt"), dataDirectory: _dir));

    [Fact]
    public void MountPointRefusal_EmptyOrNotYetMadeDirectory_IsNull()
    {
        Assert.Null(HostFileSystem.MountPointRefusal(_dir));
        Assert.Null(HostFileSystem.MountPointRefusal(Path.Combine(_dir, "new", "log")));
    }

    [Fact]
    public void Validate_HostFileSystems_BadTypeRelativeMountSharedMountReadOnly_AreNamed()
    {
        var state = new DesiredState
        {
            HostDevices =
            [
                new HostDeviceSpec { Volume = "p/a", FileSystem = "ext4", Mount = "/srv/a" },
                new HostDeviceSpec { Volume = "p/b", FileSystem = "btrfs", Mount = "/srv/b" },
                new HostDeviceSpec { Volume = "p/c", FileSystem = "ext4", Mount = "srv/c" },
                new HostDeviceSpec { Volume = "p/d", FileSystem = "xfs", Mount = "/srv/a" },
                new HostDeviceSpec { Volume = "p/e", FileSystem = "ext4", Mount = "/srv/e", ReadOnly = true },
                new HostDeviceSpec { Volume = "p/f" },
            ],
        };
        var errors = ConfigValidator.Validate(state, _dir);
        Assert.Equal(
        [
            "host_devices[1].file_system: give one of ext4, xfs with a mount",
            "host_devices[2].mount: give an absolute directory with a file system",
            "host_devices[3].mount: /srv/a is the mount point of another file system",
            "host_devices[4]: a file system of this host is not read-only",
        ], errors);
    }
}
