using EdgeBlock.Nvme;

namespace EdgeBlock.Initiator;

/// <summary>Entry points of the .NET NVMe/TCP host: connect to a subsystem, or ask a discovery controller what there is.</summary>
public static class NvmeHost
{
    /// <summary>The NVMe/TCP discovery service port (IANA).</summary>
    public const int DiscoveryPort = 8009;

    /// <summary>A host NQN in the spec's UUID form, as nvme-cli generates (nqn.2014-08.org.nvmexpress:uuid:...).</summary>
    public static string HostNqnFromId(Guid hostId) => $"nqn.2014-08.org.nvmexpress:uuid:{hostId}";

    /// <inheritdoc cref="NvmeController.ConnectAsync"/>
    public static Task<NvmeConnectResult> ConnectAsync(string host, int port, string subsysNqn, string hostNqn,
        int ioQueues = 1, int queueSize = 128, bool headerDigest = false, bool dataDigest = false,
        NvmeConnectOptions? options = null, CancellationToken cancellationToken = default) =>
        NvmeController.ConnectAsync(host, port, subsysNqn, hostNqn, ioQueues, queueSize, headerDigest, dataDigest, options, cancellationToken);

    /// <summary>
    /// Connects to the discovery controller (nqn.2014-08.org.nvmexpress.discovery, no keep alive, as nvme discover does),
    /// reads the discovery log page and disconnects. A refused connect comes back as the Connect status.
    /// </summary>
    public static async Task<NvmeResult<DiscoveryLogPage>> DiscoverAsync(string host, int port, string hostNqn,
        bool headerDigest = false, bool dataDigest = false, NvmeConnectOptions? options = null, CancellationToken cancellationToken = default)
    {
        options = (options ?? new NvmeConnectOptions()) with { KatoMs = 0 };
        var connected = await NvmeController.ConnectAsync(host, port, Nqn.Discovery, hostNqn, ioQueues: 0, queueSize: 2,
            headerDigest, dataDigest, options, cancellationToken).ConfigureAwait(false);
        if (connected.Controller is not { } controller) return new(connected.Completion, null);
        await using (controller.ConfigureAwait(false))
        {
            return await controller.GetDiscoveryLogAsync().ConfigureAwait(false);
        }
    }
}
