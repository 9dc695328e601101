using System.Runtime.InteropServices;
using EdgeBlock.Api.Pools;
using EdgeBlock.Daemon;
using EdgeBlock.Daemon.Pools;
using EdgeBlock.Rbd.Tests.Support;
using EdgeBlock.Volumes;

namespace EdgeBlock.Rbd.Tests;

/// <summary>
/// What `pool create --ceph CONF --keyring FILE` may make the daemon open: the storage policy's places, no link
/// leading out of them, and a keyring that is its user's secret. All refused before librados sees the path, so no
/// cluster is needed.
/// </summary>
public sealed partial class CephPoolPolicyTests : IAsyncLifetime
{
    private readonly string _root = Path.Combine("/var/tmp", "eb-cephpol-" + Guid.NewGuid().ToString("N")[..12]);
    private readonly string _outside = Path.Combine("/var/tmp", "eb-cephout-" + Guid.NewGuid().ToString("N")[..12]);
    private EdgeBlockDaemon _daemon = null!;

    private string Conf => Path.Combine(_root, "ceph.conf");

    private string Keyring => Path.Combine(_root, "edgeblock.keyring");

    private static void WriteFile(string path, UnixFileMode mode)
    {
        File.WriteAllText(path, path.EndsWith(".keyring", StringComparison.Ordinal)
            ? "[client.edgeblock]\n\tkey = AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\n" : "[global]\nmon host = v2:127.0.0.1:1\n");
        File.SetUnixFileMode(path, mode);
    }

    private Task<VolumeException> RefusedAsync(string conf, string? keyring) =>
        Assert.ThrowsAsync<VolumeException>(() => _daemon.Pools.CreateAsync(
            new CreatePoolRequest("cp", null, Ceph: conf, CephUser: keyring is null ? null : "edgeblock", Keyring: keyring)));

    [Fact]
    public async Task CreateCephPool_ConfOutsideTheAllowedPlaces_IsRefused400NamingThePath()
    {
        string conf = Path.Combine(_outside, "ceph.conf");
        WriteFile(conf, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        VolumeException refused = await RefusedAsync(conf, null);

        Assert.Equal(400, PoolManager.Refusal(refused).Status);
        Assert.StartsWith($"Ceph configuration {conf}: Ceph files must be under /etc/ceph, the data directory", refused.Message);
        Assert.Contains($"or a storage root ({_root})", refused.Message);
        Assert.DoesNotContain(_daemon.Pools.List(), p => p.Name == "cp");
    }

    [Fact]
    public async Task CreateCephPool_KeyringLinkLeadingOutOfTheRoot_IsRefusedNamingWhereItLeads()
    {
        WriteFile(Conf, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        string secret = Path.Combine(_outside, "other.keyring");
        WriteFile(secret, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.CreateSymbolicLink(Keyring, secret);

        VolumeException refused = await RefusedAsync(Conf, Keyring);

        Assert.Equal(400, PoolManager.Refusal(refused).Status);
        Assert.StartsWith($"keyring {Keyring} (which leads to {secret}): Ceph files must be under /etc/ceph", refused.Message);
    }

    [Fact]
    public async Task CreateCephPool_ConfThatIsNotARegularFile_IsRefused()
    {
        string fifo = Path.Combine(_root, "fifo.conf");
        Assert.Equal(0, MakeFifo(fifo, 0x180)); // 0600

        VolumeException refused = await RefusedAsync(fifo, null);

        Assert.Equal($"Ceph configuration {fifo}: it is not a regular file", refused.Message);
    }

    [Fact]
    public async Task CreateCephPool_KeyringReadableByOthers_IsRefused400NamingTheMode()
    {
        WriteFile(Conf, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        WriteFile(Keyring, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);

        VolumeException refused = await RefusedAsync(Conf, Keyring);

        Assert.Equal(400, PoolManager.Refusal(refused).Status);
        Assert.Equal($"keyring {Keyring} has mode 0644; it holds a secret key and must be readable by its owner only (chmod 600)", refused.Message);
    }

    [RootFact]
    public async Task CreateCephPool_KeyringOwnedByAnotherUser_IsRefusedNamingTheOwner()
    {
        WriteFile(Conf, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        WriteFile(Keyring, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        Assert.Equal(0, Chown(Keyring, 65534, 65534));

        VolumeException refused = await RefusedAsync(Conf, Keyring);

        Assert.Equal(400, PoolManager.Refusal(refused).Status);
        Assert.StartsWith($"keyring {Keyring} is owned by uid 65534, not by the daemon's user (uid 0)", refused.Message);
    }

    [LibraryImport("libc", EntryPoint = "chown", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Chown(string path, int owner, int group);

    [LibraryImport("libc", EntryPoint = "mkfifo", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int MakeFifo(string path, uint mode);

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_root);
        Directory.CreateDirectory(_outside);
        _daemon = CephDaemon.New(Path.Combine(_root, "data"), _root);
        await _daemon.StartAsync(CancellationToken.None);
    }

    public async Task DisposeAsync()
    {
        await _daemon.StopAsync(CancellationToken.None);
        await _daemon.DisposeAsync();
        Directory.Delete(_root, recursive: true);
        Directory.Delete(_outside, recursive: true);
    }
}

/// <summary>A test that gives a file to another user: only root can (./test.sh runs as root); skipped otherwise, saying so.</summary>
public sealed class RootFactAttribute : FactAttribute
{
    public RootFactAttribute()
    {
        Skip = Environment.IsPrivilegedProcess ? null : "needs root: only root can give a file to another user";
    }
}
