using System.Text;

namespace EdgeBlock.Daemon.Management;

/// <summary>Where a vhost-user export's socket lives: a relative path is under the data directory.</summary>
public static class VhostSocket
{
    /// <summary>sun_path holds 108 bytes with the terminating NUL.</summary>
    public const int MaxPathBytes = 107;

    /// <summary>The absolute socket path an export is known by (its key in the desired state and in the engine).</summary>
    public static string Resolve(string path, string dataDirectory) => Path.GetFullPath(path, dataDirectory);

    public static bool TryResolve(string? path, string dataDirectory, out string full, out string why)
    {
        full = "";
        why = "";
        if (string.IsNullOrWhiteSpace(path))
        {
            why = "missing (a Unix socket path for QEMU's chardev, e.g. vhost/vm1-disk0.sock under the data directory)";
            return false;
        }
        full = Resolve(path, dataDirectory);
        if (Encoding.UTF8.GetByteCount(full) > MaxPathBytes)
        {
            why = $"'{full}' is {Encoding.UTF8.GetByteCount(full)} bytes; a Unix socket path holds at most {MaxPathBytes} (choose a shorter one)";
            return false;
        }
        if (full.EndsWith('/'))
        {
            why = $"'{full}' names a directory, not a socket";
            return false;
        }
        string dir = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(dir) && !IsUnder(dir, dataDirectory))
        {
            why = $"directory {dir} does not exist (create it first, or give a path under the data directory {dataDirectory})";
            return false;
        }
        return true;
    }

    private static bool IsUnder(string dir, string dataDirectory)
    {
        string root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(dataDirectory)) + "/";
        return (dir + "/").StartsWith(root, StringComparison.Ordinal);
    }
}
