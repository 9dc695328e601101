using EdgeBlock.Daemon.Pools;

namespace EdgeBlock.Daemon.Management;

/// <summary>vhost-user-blk exports: a backend served to a VM over a Unix socket, kept in the desired state like namespaces.</summary>
public sealed partial class ManagementService
{
    public IReadOnlyList<VhostInfo> VhostExports() => _desired.Vhost.Select(_engine.DescribeVhost).ToList();

    public VhostInfo VhostExport(string socket) => _engine.DescribeVhost(FindVhost(_desired, socket));

    public Task<VhostInfo> AddVhostAsync(AddVhostRequest request)
    {
        VhostSpec? spec = null;
        return ChangeAsync(state =>
        {
            if (!VhostSocket.TryResolve(request.Socket, _dataDirectory, out string socket, out string why)) throw ManagementException.Invalid($"socket {why}");
            if (state.FindVhost(socket) != null) throw ManagementException.Conflict($"vhost export {socket} already exists (remove it first: edgeblock vhost remove {socket})");
            if (!BackendSpec.TryParse(request.Backend, out var backend, out string error)) throw ManagementException.Invalid($"backend {error}");
            if (!backend.TryCheck(_dataDirectory, out error)) throw ManagementException.Invalid($"backend '{request.Backend}': {error}");
            if (backend.Kind == BackendKind.Volume) VolumeBackends.NewNamespaceUuid(_pools, backend); // refuses an unknown pool or volume by name
            spec = new VhostSpec { Socket = socket, Backend = backend.ToString(), Queues = request.Queues, ReadOnly = request.ReadOnly ?? false };
            state.Vhost.Add(spec);
        }, undoable: true, result: () => _engine.DescribeVhost(spec!), force: request.Force);
    }

    public Task RemoveVhostAsync(string socket) => ChangeAsync<object?>(state => state.Vhost.Remove(FindVhost(state, socket)),
        undoable: false, result: () => null);

    private VhostSpec FindVhost(DesiredState state, string? socket)
    {
        string full = VhostSocket.Resolve(socket ?? "", _dataDirectory);
        return state.Vhost.FirstOrDefault(v => VhostSocket.Resolve(v.Socket, _dataDirectory) == full)
               ?? throw ManagementException.NotFound($"no vhost export on {full} (see `edgeblock vhost list`)");
    }
}
