using System.Runtime.InteropServices;

namespace EdgeBlock.Daemon;

/// <summary>
/// The data directory holds every VM's disk, so what serve creates is private to its user whatever
/// umask it inherited (a shell's 022 made images world-readable): file creation mask 077, and a data
/// directory that others can enter is closed to them. Sockets keep their explicit modes (the API
/// socket is 0660 after bind).
/// </summary>
internal static partial class PrivateFiles
{
    private const uint PrivateMask = 0b000_111_111; // 077: no group or other bits on anything created

    private const UnixFileMode OthersOrGroup =
        UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute |
        UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    /// <summary>Sets the creation mask; returns a line for the log when an existing data directory or config was opened up to others and is now closed.</summary>
    public static IReadOnlyList<string> Apply(string dataDirectory, string configPath)
    {
        if (!OperatingSystem.IsLinux()) return [];
        Umask(PrivateMask);
        var changed = new List<string>();
        Restrict(dataDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, changed);
        Restrict(configPath, UnixFileMode.UserRead | UnixFileMode.UserWrite, changed);
        return changed;
    }

    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    private static void Restrict(string path, UnixFileMode mode, List<string> changed)
    {
        if (!Path.Exists(path)) return;
        var before = File.GetUnixFileMode(path);
        if ((before & OthersOrGroup) == 0) return;
        File.SetUnixFileMode(path, mode);
        changed.Add($"{path} was mode {Octal(before)}, now {Octal(mode)}: it is only the daemon's user's");
    }

    private static string Octal(UnixFileMode mode) => Convert.ToString((int)mode & 0x1FF, 8).PadLeft(4, '0');

    [LibraryImport("libc", EntryPoint = "umask")]
    private static partial uint Umask(uint mask);
}
