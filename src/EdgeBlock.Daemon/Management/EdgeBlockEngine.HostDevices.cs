using System.Collections.Concurrent;
using EdgeBlock.Daemon.Pools;
using EdgeBlock.Storage;
using EdgeBlock.Transports.Ublk;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Daemon.Management;

/// <summary>Host devices: a volume served to this host's kernel through ublk, one <see cref="UblkDevice"/> per volume.</summary>
public sealed partial class EdgeBlockEngine
{
    /// <summary>An attached volume, or (Ublk null) one that could not be attached at start.</summary>
    private sealed record HostDevice(HostDeviceSpec Spec, UblkDevice? Ublk, IBlockDevice? Device, string? Unavailable);

    private readonly ConcurrentDictionary<string, HostDevice> _hostDevices = new(StringComparer.Ordinal);

    /// <summary>Set by <see cref="ClearAsync"/>: host devices are going whatever their file systems say.</summary>
    private bool _stopping;

    private async Task AttachHostDeviceAsync(HostDeviceSpec spec)
    {
        if (_hostDevices.ContainsKey(spec.Volume)) throw ManagementException.Conflict($"volume {spec.Volume} is already attached to this host");
        IBlockDevice device;
        try
        {
            if (UblkDevice.Unavailable() is { } missing) throw ManagementException.Invalid(missing);
            device = OpenBackend(new NamespaceSpec { Backend = spec.Backend }, StoragePolicy.HostDeviceKey(spec.Volume));
        }
        catch (ManagementException ex) when (_starting)
        {
            // As for namespaces: at start a volume that cannot be attached is reported, the daemon runs on.
            _logger.LogError("host device {Volume} not attached: {Message}", spec.Volume, ex.Message);
            _hostDevices[spec.Volume] = new HostDevice(spec, null, null, ex.Message);
            return;
        }
        UblkDevice ublk;
        try
        {
            ublk = await UblkDevice.StartAsync(device, new UblkOptions { ReadOnly = spec.ReadOnly }, _transportLogger).ConfigureAwait(false);
        }
        catch (UblkException ex)
        {
            _teardown.Retire(device);
            if (_starting)
            {
                _logger.LogError("host device {Volume} not attached: {Message}", spec.Volume, ex.Message);
                _hostDevices[spec.Volume] = new HostDevice(spec, null, null, ex.Message);
                return;
            }
            throw ManagementException.Conflict($"volume {spec.Volume}: {ex.Message}");
        }
        _hostDevices[spec.Volume] = new HostDevice(spec, ublk, device, null);
        _logger.LogInformation("host device {Path} = volume {Volume} ({Size}{ReadOnly})", ublk.BlockDevicePath, spec.Volume,
            Sizes.Format(device.BlockCount * device.BlockSize), spec.ReadOnly ? ", read-only" : "");
        if (spec.IsFileSystem) await MountFileSystemAsync(spec, ublk.BlockDevicePath).ConfigureAwait(false);
    }

    /// <summary>
    /// A file system of this host: made if the device has none, mounted. At start a failure is logged and the device
    /// stays attached (its data is untouched; `fs list` says why); through the API the attach is undone and refused.
    /// </summary>
    private async Task MountFileSystemAsync(HostDeviceSpec spec, string device)
    {
        try
        {
            string did = await HostFileSystem.MountAsync(device, spec.FileSystem!, spec.Mount!).ConfigureAwait(false);
            _logger.LogInformation("file system of volume {Volume} on {Device}: {Done}", spec.Volume, device, did);
        }
        catch (ManagementException ex) when (_starting)
        {
            _logger.LogError("file system of volume {Volume} on {Device} not mounted at {Mount}: {Message}", spec.Volume, device, spec.Mount, ex.Message);
            _hostDevices[spec.Volume] = _hostDevices[spec.Volume] with { Unavailable = $"not mounted: {ex.Message}" };
        }
        catch (ManagementException)
        {
            await DetachHostDeviceAsync(spec.Volume).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Removes the disk from the kernel (what it still had queued is served first), then closes the volume.</summary>
    private async Task DetachHostDeviceAsync(string volume)
    {
        // A file system of this host is unmounted first (a busy one refuses the detach); at shutdown it is detached regardless.
        if (_hostDevices.GetValueOrDefault(volume) is { Spec.IsFileSystem: true, Ublk: { } mounted } fs)
        {
            try
            {
                await HostFileSystem.UnmountAsync(mounted.BlockDevicePath, fs.Spec.Mount!).ConfigureAwait(false);
            }
            catch (ManagementException ex) when (_stopping)
            {
                _logger.LogError("file system of volume {Volume} not unmounted from {Mount} at shutdown ({Message}); its device goes anyway", volume, fs.Spec.Mount, ex.Message);
            }
        }
        if (!_hostDevices.TryRemove(volume, out var attached)) throw ManagementException.NotFound($"volume {volume} is not attached to this host");
        if (attached.Ublk != null) await attached.Ublk.DisposeAsync().ConfigureAwait(false);
        if (attached.Device != null) _teardown.Retire(attached.Device);
        _logger.LogInformation("host device of volume {Volume} detached", volume);
    }

    public HostDeviceInfo DescribeHostDevice(HostDeviceSpec spec)
    {
        var attached = _hostDevices.GetValueOrDefault(spec.Volume);
        var ublk = attached?.Ublk;
        var device = attached?.Device;
        var io = ublk?.Statistics ?? default;
        return new HostDeviceInfo(spec.Volume, spec.ReadOnly, ublk?.BlockDevicePath, ublk == null ? "unavailable" : "attached",
            attached == null ? "not attached" : attached.Unavailable, device == null ? 0 : device.BlockCount * device.BlockSize,
            io.Requests, io.Failed, io.BytesRead, io.BytesWritten, spec.FileSystem, spec.Mount);
    }

    private async Task ClearHostDevicesAsync()
    {
        _stopping = true;
        foreach (string volume in _hostDevices.Keys.ToList()) await DetachHostDeviceAsync(volume).ConfigureAwait(false);
    }
}
