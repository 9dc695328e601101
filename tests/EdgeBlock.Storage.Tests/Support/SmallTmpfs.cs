namespace EdgeBlock.Storage.Tests.Support;

/// <summary>A tiny tmpfs mounted on a temp directory, to run a file system out of space. Needs root.</summary>
public sealed class SmallTmpfs : IDisposable
{
    private static readonly Lazy<bool> s_available = new(Probe);

    private readonly TempDirectory _mountPoint;

    public SmallTmpfs(long sizeBytes)
    {
        _mountPoint = new TempDirectory();
        try
        {
            Commands.Run("mount", "-t", "tmpfs", "-o", $"size={sizeBytes}", "tmpfs", _mountPoint.Path);
        }
        catch
        {
            _mountPoint.Dispose();
            throw;
        }
    }

    public static bool IsAvailable => s_available.Value;

    public string File(string name) => _mountPoint.File(name);

    public void Dispose()
    {
        // A closed io_uring drops its registered files from a kernel worker, a moment after close: until then the
        // file system is busy. Retry for a while rather than leave the mount behind.
        for (int attempt = 0; ; attempt++)
        {
            (int exitCode, _, string error) = Commands.TryRun("umount", _mountPoint.Path);
            if (exitCode == 0) break;
            if (attempt == 50 || !error.Contains("busy", StringComparison.Ordinal))
                throw new InvalidOperationException($"'umount {_mountPoint.Path}' exited with {exitCode}: {error.Trim()}");
            Thread.Sleep(100);
        }
        _mountPoint.Dispose();
    }

    private static bool Probe()
    {
        if (!OperatingSystem.IsLinux() || !Environment.IsPrivilegedProcess)
        {
            return false;
        }
        try
        {
            new SmallTmpfs(64 * 1024).Dispose();
            return true;
        }
        catch (InvalidOperationException)
        {
            return false; // no permission to mount here (e.g. an unprivileged container)
        }
    }
}

/// <summary>A fact that needs to mount a tmpfs; skipped where we cannot.</summary>
public sealed class SmallTmpfsFactAttribute : FactAttribute
{
    public SmallTmpfsFactAttribute()
    {
        if (!SmallTmpfs.IsAvailable)
        {
            Skip = "Needs root and permission to mount a tmpfs.";
        }
    }
}
