using System.Collections.Concurrent;
using EdgeBlock.Storage;
using EdgeBlock.Transports.VhostUser;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Daemon.Management;

/// <summary>vhost-user-blk exports: one <see cref="VhostUserBlkServer"/> per socket, each over its own opened backend.</summary>
public sealed partial class EdgeBlockEngine
{
    /// <summary>A running export, or (Server null) one whose backend was unavailable at start.</summary>
    private sealed record VhostExport(VhostSpec Spec, VhostUserBlkServer? Server, IBlockDevice? Device, string? Unavailable);

    // Read by list calls outside the change lock.
    private readonly ConcurrentDictionary<string, VhostExport> _vhost = new(StringComparer.Ordinal);

    /// <summary>Opens the backend and starts listening on the socket (replacing a stale socket file).</summary>
    private void AddVhost(VhostSpec spec)
    {
        if (!VhostSocket.TryResolve(spec.Socket, _dataDirectory, out string socket, out string why))
            throw ManagementException.Invalid($"vhost socket: {why}");
        if (_vhost.ContainsKey(socket)) throw ManagementException.Conflict($"vhost export {socket} already exists");
        IBlockDevice device;
        try
        {
            device = OpenBackend(new NamespaceSpec { Backend = spec.Backend }, StoragePolicy.VhostKey(socket, spec.Backend));
        }
        catch (ManagementException ex) when (_starting)
        {
            // As for namespaces: a pool that did not open, or the storage policy, refuses its exports, not the daemon.
            _logger.LogError("vhost export {Socket} ({Backend}) not served: {Message}", socket, spec.Backend, ex.Message);
            _vhost[socket] = new VhostExport(spec, null, null, ex.Message);
            return;
        }
        VhostUserBlkServer server;
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(socket)!);
            var options = new VhostUserBlkOptions { MaxQueues = spec.QueueCount, ReadOnly = spec.ReadOnly, Serial = Serial(device), Buffers = _buffers };
            server = new VhostUserBlkServer(socket, device, options, _transportLogger);
            server.Start(); // a server that failed to start holds no fd, thread or socket file: nothing to release
        }
        catch (Exception ex) when (ex is IOException or ArgumentException or UnauthorizedAccessException)
        {
            _teardown.Retire(device);
            throw ManagementException.Conflict($"vhost socket {socket}: {ex.Message}");
        }
        _vhost[socket] = new VhostExport(spec, server, device, null);
        _logger.LogInformation("vhost export {Socket} = {Backend} ({Size}, up to {Queues} queues{ReadOnly})", socket, spec.Backend,
            Sizes.Format(device.BlockCount * device.BlockSize), spec.QueueCount, spec.ReadOnly ? ", read-only" : "");
    }

    /// <summary>Stops serving a socket: the VM's connection is closed (its disk stops answering), the backend flushed and closed.</summary>
    private async Task RemoveVhostAsync(string socketPath)
    {
        string socket = VhostSocket.Resolve(socketPath, _dataDirectory);
        if (!_vhost.TryRemove(socket, out var export)) throw ManagementException.NotFound($"no vhost export on {socket}");
        if (export.Server != null) await export.Server.DisposeAsync().ConfigureAwait(false);
        if (export.Device != null) _teardown.Retire(export.Device); // the server stopped after its requests completed: nothing is in flight
        _logger.LogInformation("vhost export {Socket} removed", socket);
    }

    /// <summary>What the API shows of an export in the desired state.</summary>
    public VhostInfo DescribeVhost(VhostSpec spec)
    {
        string socket = VhostSocket.Resolve(spec.Socket, _dataDirectory);
        var export = _vhost.GetValueOrDefault(socket);
        var server = export?.Server;
        var device = export?.Device;
        string state = server == null ? "unavailable" : server.IsConnected ? "connected" : "waiting";
        string? reason = export?.Unavailable ?? server?.LastDisconnectReason
                         ?? (export == null ? "not running" : null);
        var io = server?.Statistics ?? default;
        return new VhostInfo(socket, spec.Backend, spec.QueueCount, spec.ReadOnly, device == null ? 0 : device.BlockCount * device.BlockSize,
            device?.BlockSize ?? 0, state, server?.Connections ?? 0, reason, io.Requests, io.Failed, io.BytesRead, io.BytesWritten);
    }

    private async Task ClearVhostAsync()
    {
        foreach (string socket in _vhost.Keys.ToList()) await RemoveVhostAsync(socket).ConfigureAwait(false);
    }

    /// <summary>GET_ID's serial (20 bytes at most): the volume's name, so the guest's /dev/disk/by-id names it.</summary>
    private static string Serial(IBlockDevice device)
    {
        string name = device is Pools.VolumeExport v ? v.Volume : "edgeblock";
        return name.Length > 20 ? name[..20] : name;
    }
}
