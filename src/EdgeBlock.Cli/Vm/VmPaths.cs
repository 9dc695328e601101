using System.Text;

namespace EdgeBlock.Cli.Vm;

/// <summary>Where a VM's files go: its sockets, console log and QMP socket, under the daemon's data directory.</summary>
internal static class VmPaths
{
    /// <summary>sun_path holds 108 bytes with the terminating NUL.</summary>
    private const int MaxSocketPathBytes = 107;

    public static string VhostSocket(string dataDir, string name, int index) =>
        Socket(Path.Combine(dataDir, "vhost", $"vm-{name}-{index}.sock"));

    public static string QmpSocket(string dataDir, string name) => Socket(Path.Combine(dataDir, "vm", $"{name}.qmp"));

    public static string ConsoleLog(string dataDir, string name) => Path.Combine(dataDir, "vm", $"{name}.console.log");

    /// <summary>A deep data directory would make a socket path too long to bind: then the runtime directory (or /tmp) holds it.</summary>
    public static string Socket(string preferred, string? runtimeDir = null)
    {
        if (Encoding.UTF8.GetByteCount(preferred) <= MaxSocketPathBytes) return preferred;
        runtimeDir ??= Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR") is { Length: > 0 } xdg ? xdg : "/tmp";
        return Path.Combine(runtimeDir, "edgeblock-" + Path.GetFileName(preferred));
    }
}
