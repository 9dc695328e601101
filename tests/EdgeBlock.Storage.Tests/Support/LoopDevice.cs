namespace EdgeBlock.Storage.Tests.Support;

/// <summary>A loop block device over a backing file, detached on Dispose. Needs root.</summary>
public sealed class LoopDevice : IDisposable
{
    private static readonly Lazy<bool> s_available = new(() =>
        OperatingSystem.IsLinux() && Environment.IsPrivilegedProcess && File.Exists("/dev/loop-control")
        && Commands.Succeeds("losetup", "--find"));

    private LoopDevice(string path)
    {
        Path = path;
    }

    public static bool IsAvailable => s_available.Value;

    /// <summary>The device node, e.g. /dev/loop3.</summary>
    public string Path { get; }

    public static LoopDevice Attach(string backingFile, int sectorSize = 512) =>
        new(Commands.Run("losetup", "--find", "--show", "--sector-size", sectorSize.ToString(), backingFile).Trim());

    public void Dispose() => Commands.Run("losetup", "--detach", Path);
}

/// <summary>A fact that needs a loop device; skipped where we cannot create one.</summary>
public sealed class LoopDeviceFactAttribute : FactAttribute
{
    public LoopDeviceFactAttribute()
    {
        if (!LoopDevice.IsAvailable)
        {
            Skip = "Needs root and losetup to create a loop block device.";
        }
    }
}
