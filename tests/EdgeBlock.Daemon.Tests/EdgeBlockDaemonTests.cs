using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeBlock.Daemon.Tests;

public sealed class EdgeBlockDaemonTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "edgeblock-daemon-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private DaemonOptions Options(BackendKind backend = BackendKind.File, int port = 0) => new()
    {
        DataDirectory = _dir,
        Listen = new IPEndPoint(IPAddress.Loopback, port),
        DefaultSizeBytes = 16 << 20,
        DefaultBackend = backend,
    };

    [Fact]
    public async Task Start_FileBackend_CreatesSparseDefaultImageAndListens()
    {
        await using var daemon = new EdgeBlockDaemon(Options(), NullLoggerFactory.Instance);
        await daemon.StartAsync(CancellationToken.None);
        var image = new FileInfo(Path.Combine(_dir, "default.img"));
        Assert.True(image.Exists);
        Assert.Equal(16 << 20, image.Length);
        using var client = new TcpClient();
        await client.ConnectAsync(daemon.ListenEndPoint!);
        Assert.True(client.Connected);
        var ns = Assert.Single(daemon.Target.FindSubsystem(DaemonOptions.DefaultSubsystemNqn)!.Namespaces.Values);
        Assert.Equal(1u, ns.Nsid);
        await daemon.StopAsync(CancellationToken.None);
    }

    [Fact]
    public async Task Restart_KeepsNamespaceUuid()
    {
        Guid first;
        await using (var daemon = new EdgeBlockDaemon(Options(), NullLoggerFactory.Instance))
        {
            await daemon.StartAsync(CancellationToken.None);
            first = daemon.Target.FindSubsystem(DaemonOptions.DefaultSubsystemNqn)!.FindNamespace(1)!.Uuid;
            await daemon.StopAsync(CancellationToken.None);
        }
        await using var again = new EdgeBlockDaemon(Options(), NullLoggerFactory.Instance);
        await again.StartAsync(CancellationToken.None);
        Assert.Equal(first, again.Target.FindSubsystem(DaemonOptions.DefaultSubsystemNqn)!.FindNamespace(1)!.Uuid);
        await again.StopAsync(CancellationToken.None);
    }

    [Fact]
    public async Task Start_PortInUse_FailsWithMessageNamingTheAddress()
    {
        using var squatter = new TcpListener(IPAddress.Loopback, 0);
        squatter.Start();
        int port = ((IPEndPoint)squatter.LocalEndpoint).Port;
        await using var daemon = new EdgeBlockDaemon(Options(BackendKind.Null, port), NullLoggerFactory.Instance);
        var ex = await Assert.ThrowsAnyAsync<InvalidOperationException>(() => daemon.StartAsync(CancellationToken.None));
        Assert.Contains($"127.0.0.1:{port}", ex.Message);
    }

    [Fact]
    public async Task StorageRoots_AreAddedToTheConfigAndAdmitFilesUnderThem()
    {
        string root = _dir + "-root";
        Directory.CreateDirectory(root);
        try
        {
            await using (var first = new EdgeBlockDaemon(Options(BackendKind.Memory), NullLoggerFactory.Instance))
                await first.StartAsync(CancellationToken.None); // a config without roots
            await using var daemon = new EdgeBlockDaemon(Options(BackendKind.Memory) with { StorageRoots = [root] }, NullLoggerFactory.Instance);
            await daemon.StartAsync(CancellationToken.None);
            Assert.Equal([root], daemon.Management.Desired.StorageRoots);
            Assert.Contains(root, await File.ReadAllTextAsync(Path.Combine(_dir, DaemonOptions.ConfigFileName)));
            var ns = await daemon.Management.AddNamespaceAsync(DaemonOptions.DefaultSubsystemNqn, new AddNamespaceRequest($"file:{root}/vm.img:1M"));
            Assert.Equal(1L << 20, ns.SizeBytes);
            await daemon.StopAsync(CancellationToken.None);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public async Task AllowedHosts_RestrictTheDefaultSubsystem()
    {
        var options = Options(BackendKind.Memory) with { AllowedHosts = ["nqn.2014-08.org.nvmexpress:uuid:allowed"] };
        await using var daemon = new EdgeBlockDaemon(options, NullLoggerFactory.Instance);
        await daemon.StartAsync(CancellationToken.None);
        var subsystem = daemon.Target.FindSubsystem(DaemonOptions.DefaultSubsystemNqn)!;
        Assert.False(subsystem.AllowAnyHost);
        Assert.True(subsystem.IsHostAllowed("nqn.2014-08.org.nvmexpress:uuid:allowed"));
        Assert.False(subsystem.IsHostAllowed("nqn.2014-08.org.nvmexpress:uuid:other"));
        await daemon.StopAsync(CancellationToken.None);
    }
}
