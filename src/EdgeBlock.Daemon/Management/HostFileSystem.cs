using System.Diagnostics;

namespace EdgeBlock.Daemon.Management;

/// <summary>
/// A file system on a host device: the refusals checked before anything is made (file system type, mkfs tool,
/// mount point), and mkfs/mount/umount run as the kernel's tools. The daemon runs them, not the CLI: it is root
/// already (ublk needs it), and `serve` must mount again at start with no CLI around.
/// </summary>
public static class HostFileSystem
{
    /// <summary>File systems `fs create` makes; the volume's size is the file system's quota.</summary>
    public static readonly string[] Types = ["ext4", "xfs"];

    public const string DefaultType = "ext4";

    private static readonly TimeSpan ToolTimeout = TimeSpan.FromMinutes(5);

    /// <summary>Where tools are looked for besides $PATH (a daemon started by systemd may have a short PATH).</summary>
    private static readonly string[] SystemDirectories = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

    /// <summary>Why type cannot be made here (unknown, or its mkfs missing, named), or null; tools are looked for in directories (default: $PATH and the system's).</summary>
    public static string? TypeRefusal(string type, IEnumerable<string>? directories = null)
    {
        if (!Types.Contains(type)) return $"file system '{type}' is not one of {string.Join(", ", Types)}";
        string tool = "mkfs." + type;
        return FindTool(tool, directories) == null
            ? $"{tool} is not installed (package {(type == "xfs" ? "xfsprogs" : "e2fsprogs")}); it makes the {type} file system"
            : null;
    }

    /// <summary>
    /// Trees of the system a file system of a service must never cover: the daemon mounts as root, and an API client
    /// must not hide what the system runs from (an empty /etc/sudoers.d, a missing /usr/lib/x) behind its own files.
    /// </summary>
    private static readonly string[] SystemTrees =
        ["/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/root", "/run", "/sbin", "/sys", "/usr"];

    /// <summary>
    /// Why dir cannot be a new mount point (relative, in a system tree or the daemon's data directory — judged where it
    /// really leads, symbolic links resolved —, not a directory, not empty), or null. A missing one is made at mount.
    /// </summary>
    public static string? MountPointRefusal(string? dir, string? dataDirectory = null)
    {
        if (string.IsNullOrEmpty(dir)) return "the mount point is missing: give --mount DIR";
        if (!Path.IsPathFullyQualified(dir) || dir.Contains("/../", StringComparison.Ordinal) || dir.EndsWith("/..", StringComparison.Ordinal))
            return $"mount point {dir} is not an absolute path";
        if (PlaceRefusal(dir, dataDirectory) is { } place) return place;
        if (File.Exists(dir)) return $"mount point {dir} is not an empty directory (it is a file)";
        if (Directory.Exists(dir) && Directory.EnumerateFileSystemEntries(dir).Any()) return $"mount point {dir} is not an empty directory";
        return null;
    }

    /// <summary>Why an absolute mount point lies where no file system of this host may go (a system tree, the data directory), or null.</summary>
    public static string? PlaceRefusal(string dir, string? dataDirectory = null)
    {
        string real = StoragePolicy.RealPath(dir);
        string via = StoragePolicy.Via(Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir)), real);
        if (real == "/") return $"mount point {dir}{via} is the root directory";
        if (SystemTrees.FirstOrDefault(tree => StoragePolicy.IsUnder(real, tree)) is { } system)
            return $"mount point {dir}{via} is in {system}, a system directory; choose one elsewhere (e.g. under /srv, /var/lib or /persist)";
        if (dataDirectory != null && StoragePolicy.IsUnder(real, StoragePolicy.RealPath(dataDirectory)))
            return $"mount point {dir}{via} is in the daemon's data directory {dataDirectory}; choose one elsewhere";
        return null;
    }

    /// <summary>The full path of tool in directories (default: $PATH, then the system directories), or null.</summary>
    public static string? FindTool(string tool, IEnumerable<string>? directories = null)
    {
        directories ??= (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries).Concat(SystemDirectories);
        return directories.Select(d => Path.Combine(d, tool)).FirstOrDefault(File.Exists);
    }

    /// <summary>Makes the file system when the device has none (by its magic numbers), then mounts it at dir with discard.</summary>
    /// <returns>What was done, for the log ("made ext4, mounted at /srv/x").</returns>
    public static async Task<string> MountAsync(string device, string type, string dir)
    {
        if (HostDevicePaths.MountPoint(device) is { } already) return $"already mounted ({already})";
        string made = "";
        if (ReadSignature(device) == null)
        {
            await RunAsync("mkfs." + type, type == "xfs" ? ["-q", device] : ["-q", "-F", device]).ConfigureAwait(false);
            made = $"made {type}, ";
        }
        Directory.CreateDirectory(dir);
        // discard: freed blocks go back to the pool at once (the volume is thin); fstrim works without it too.
        await RunAsync("mount", ["-t", type, "-o", "discard", device, dir]).ConfigureAwait(false);
        return $"{made}mounted at {dir}";
    }

    /// <summary>Unmounts dir if device is mounted there; throws naming the mount when the kernel refuses (busy).</summary>
    public static async Task UnmountAsync(string device, string dir)
    {
        if (HostDevicePaths.MountPoint(device) == null) return;
        await RunAsync("umount", [dir]).ConfigureAwait(false);
    }

    private static string? ReadSignature(string device)
    {
        using var stream = new FileStream(device, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        var head = new byte[DiskProbe.HeadBytes];
        int read = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        return DiskProbe.Signature(head.AsSpan(0, read));
    }

    /// <summary>Runs a tool; a failure becomes a 409 naming the command and what it printed.</summary>
    private static async Task RunAsync(string tool, string[] args)
    {
        string path = FindTool(tool) ?? throw ManagementException.Invalid($"{tool} is not installed");
        var start = new ProcessStartInfo(path) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start) ?? throw ManagementException.Conflict($"cannot start {tool}");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(ToolTimeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            throw ManagementException.Conflict($"{tool} {string.Join(' ', args)} did not finish in {ToolTimeout.TotalMinutes} min");
        }
        if (process.ExitCode != 0)
        {
            string said = ((await error.ConfigureAwait(false)) + (await output.ConfigureAwait(false))).Trim();
            throw ManagementException.Conflict($"{tool} {string.Join(' ', args)} failed (exit {process.ExitCode}): {said}");
        }
    }
}
