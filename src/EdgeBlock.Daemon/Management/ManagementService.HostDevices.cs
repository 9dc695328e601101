using EdgeBlock.Daemon.Pools;

namespace EdgeBlock.Daemon.Management;

/// <summary>Host devices: volumes attached to this host's kernel (ublk), kept in the desired state like exports.</summary>
public sealed partial class ManagementService
{
    public IReadOnlyList<HostDeviceInfo> HostDevices() => _desired.HostDevices.Select(_engine.DescribeHostDevice).ToList();

    public Task<HostDeviceInfo> AttachHostDeviceAsync(AttachHostDeviceRequest request)
    {
        HostDeviceSpec? spec = null;
        return ChangeAsync(state =>
        {
            string volume = request.Volume ?? "";
            if (!HostDevicePaths.IsVolume(volume, out string why)) throw ManagementException.Invalid($"volume {why}");
            if (state.FindHostDevice(volume) != null)
                throw ManagementException.Conflict($"volume {volume} is already attached to this host ({_engine.DescribeHostDevice(state.FindHostDevice(volume)!).Device ?? "not live"})");
            if (ExportOf(state, volume) is { } export)
                throw ManagementException.Conflict($"volume {volume} is exported as {export}; a volume is exported once (remove that export first)");
            BackendSpec.TryParse($"volume:{volume}", out var backend, out _);
            VolumeBackends.NewNamespaceUuid(_pools, backend); // refuses an unknown pool or volume by name
            spec = new HostDeviceSpec { Volume = volume, ReadOnly = request.ReadOnly ?? false };
            state.HostDevices.Add(spec);
        }, undoable: true, result: () => _engine.DescribeHostDevice(spec!));
    }

    /// <summary>Detaches by volume (POOL/NAME) or device (/dev/ublkbN); refused while mounted unless forced.</summary>
    public Task DetachHostDeviceAsync(string target, bool force)
    {
        var spec = FindHostDevice(target);
        if (!force && _engine.DescribeHostDevice(spec).Device is { } device && HostDevicePaths.MountPoint(device) is { } mount)
            throw ManagementException.Conflict($"{device} (volume {spec.Volume}) is mounted ({mount}); unmount it first "
                                               + "(--force detaches anyway: the file system then gets I/O errors)");
        return ChangeAsync<object?>(state => state.HostDevices.RemoveAll(h => h.Volume == spec.Volume), undoable: false, result: () => null);
    }

    private HostDeviceSpec FindHostDevice(string target)
    {
        if (target.StartsWith("/dev/", StringComparison.Ordinal))
            return _desired.HostDevices.FirstOrDefault(h => _engine.DescribeHostDevice(h).Device == target)
                   ?? throw ManagementException.NotFound($"{target} is not a host device of this daemon (see `edgeblock host devices`)");
        if (!HostDevicePaths.IsVolume(target, out string why)) throw ManagementException.Invalid($"give POOL/NAME or /dev/ublkbN: '{target}' {why}");
        return _desired.FindHostDevice(target) ?? throw ManagementException.NotFound($"volume {target} is not attached to this host (see `edgeblock host devices`)");
    }

    /// <summary>The namespace or vhost export that serves a volume already, or null.</summary>
    private static string? ExportOf(DesiredState state, string volume)
    {
        string backend = $"volume:{volume}";
        foreach (var s in state.Subsystems)
            if (s.Namespaces.FirstOrDefault(n => n.Backend == backend) is { } ns) return $"namespace {ns.Nsid} of {s.Nqn}";
        return state.Vhost.FirstOrDefault(v => v.Backend == backend) is { } vhost ? $"vhost export {vhost.Socket}" : null;
    }
}
