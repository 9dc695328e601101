namespace EdgeBlock.Daemon.Management;

/// <summary>Names and kernel facts about host devices: the volume rule, a device's MAJOR:MINOR, where it is mounted.</summary>
public static class HostDevicePaths
{
    /// <summary>A host device's volume is POOL/NAME of a volume (not a snapshot).</summary>
    public static bool IsVolume(string? volume, out string why)
    {
        why = "";
        if (string.IsNullOrEmpty(volume)) { why = "is missing: give POOL/NAME"; return false; }
        if (!BackendSpec.TryParse($"volume:{volume}", out var backend, out string error) || backend.Path != volume)
        {
            why = $"'{volume}' is not POOL/NAME: {error}";
            return false;
        }
        if (volume.Contains('@')) { why = $"'{volume}' is a snapshot; clone it and attach the clone"; return false; }
        return true;
    }

    /// <summary>The kernel's first mount of /dev/NAME ("SOURCE on MOUNTPOINT", from mountinfo by MAJOR:MINOR), or null.</summary>
    public static string? MountPoint(string devicePath)
    {
        string dev = $"/sys/class/block/{Path.GetFileName(devicePath)}/dev";
        if (!File.Exists(dev) || !File.Exists("/proc/self/mountinfo")) return null;
        return DiskProbe.MountedAt(File.ReadAllText("/proc/self/mountinfo"), [File.ReadAllText(dev).Trim()], devicePath);
    }
}
