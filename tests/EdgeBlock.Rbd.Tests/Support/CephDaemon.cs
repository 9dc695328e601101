using System.Net;
using EdgeBlock.Daemon;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeBlock.Rbd.Tests.Support;

/// <summary>A daemon (not yet started) for the Ceph pool tests: memory default namespace, NVMe/TCP on a free port.</summary>
public static class CephDaemon
{
    /// <param name="storageRoot">where the Ceph conf and keyring may be (the test cluster's directory, as an operator would allow /etc/ceph's)</param>
    public static EdgeBlockDaemon New(string dataDirectory, string storageRoot) => new(new DaemonOptions
    {
        DataDirectory = dataDirectory,
        StorageRoots = [storageRoot],
        Listen = new IPEndPoint(IPAddress.Loopback, 0),
        DefaultSizeBytes = 1 << 20,
        DefaultBackend = BackendKind.Memory,
    }, NullLoggerFactory.Instance);

    /// <summary>A daemon of <see cref="New"/>, started.</summary>
    public static async Task<EdgeBlockDaemon> StartAsync(string dataDirectory, string storageRoot)
    {
        EdgeBlockDaemon daemon = New(dataDirectory, storageRoot);
        await daemon.StartAsync(CancellationToken.None);
        return daemon;
    }

    /// <summary>Stops and disposes a daemon (its data directory stays, for a restart).</summary>
    public static async Task StopAsync(EdgeBlockDaemon daemon)
    {
        await daemon.StopAsync(CancellationToken.None);
        await daemon.DisposeAsync();
    }
}
