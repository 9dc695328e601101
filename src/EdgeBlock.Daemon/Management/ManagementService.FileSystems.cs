using EdgeBlock.Api.Pools;
using EdgeBlock.Volumes;

namespace EdgeBlock.Daemon.Management;

/// <summary>
/// File systems of this host (`fs create|list|remove`): a thin volume whose size is the file system's quota, attached
/// as a host device whose spec carries the file system and its mount point, so `serve` mounts it again at start.
/// </summary>
public sealed partial class ManagementService
{
    public IReadOnlyList<HostDeviceInfo> FileSystems() =>
        _desired.HostDevices.Where(h => h.IsFileSystem).Select(_engine.DescribeHostDevice).ToList();

    public async Task<HostDeviceInfo> CreateFileSystemAsync(CreateFileSystemRequest request)
    {
        string volume = request.Volume ?? "";
        if (!HostDevicePaths.IsVolume(volume, out string why)) throw ManagementException.Invalid($"volume {why}");
        string type = string.IsNullOrEmpty(request.Fs) ? HostFileSystem.DefaultType : request.Fs;
        if (HostFileSystem.TypeRefusal(type) is { } noType) throw ManagementException.Invalid(noType);
        if (HostFileSystem.MountPointRefusal(request.Mount, _dataDirectory) is { } noMount) throw ManagementException.Invalid(noMount);
        if (_desired.HostDevices.FirstOrDefault(h => h.Mount == request.Mount) is { } other)
            throw ManagementException.Conflict($"mount point {request.Mount} is that of volume {other.Volume}'s file system");
        if (_pools == null) throw ManagementException.Invalid("this daemon has no pools (the kernel engine serves none)");
        string pool = volume[..volume.IndexOf('/')], name = volume[(volume.IndexOf('/') + 1)..];
        await _pools.CreateVolumeAsync(pool, new CreateVolumeRequest(name, request.Size ?? "", Group: request.Group)).ConfigureAwait(false);
        var spec = new HostDeviceSpec { Volume = volume, FileSystem = type, Mount = request.Mount };
        try
        {
            return await ChangeAsync(state => state.HostDevices.Add(spec), undoable: true, result: () => _engine.DescribeHostDevice(spec)).ConfigureAwait(false);
        }
        catch (ManagementException)
        {
            // Nothing of a refused file system is kept: the volume was made for it.
            await _pools.DeleteVolumeAsync(pool, name).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Unmounts (refused while busy, naming the mount point), detaches, then deletes the volume unless kept.</summary>
    public async Task RemoveFileSystemAsync(string volume, bool keepVolume)
    {
        if (!HostDevicePaths.IsVolume(volume, out string why)) throw ManagementException.Invalid($"volume {why}");
        var spec = _desired.FindHostDevice(volume) is { IsFileSystem: true } fs ? fs
            : throw ManagementException.NotFound($"volume {volume} is not a file system of this host (see `edgeblock fs list`)");
        await ChangeAsync<object?>(state => state.HostDevices.RemoveAll(h => h.Volume == spec.Volume), undoable: false, result: () => null).ConfigureAwait(false);
        if (keepVolume || _pools == null) return;
        string pool = volume[..volume.IndexOf('/')];
        try
        {
            await _pools.DeleteVolumeAsync(pool, volume[(volume.IndexOf('/') + 1)..]).ConfigureAwait(false);
        }
        catch (VolumeException ex)
        {
            throw ManagementException.Conflict($"the file system at {spec.Mount} is gone, but volume {volume} was not deleted: {ex.Message}");
        }
    }
}
