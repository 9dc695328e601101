using System.Runtime.InteropServices;
using EdgeBlock.Interop;
using Microsoft.Win32.SafeHandles;

namespace EdgeBlock.Storage.Tests.Support;

/// <summary>
/// What the kernel's page cache holds of a file, through cachestat(2) (Linux 6.5+): pages
/// cached at all (O_DIRECT writes leave none) and pages dirty (a sync leaves none).
/// </summary>
public static partial class PageCache
{
    // Same number on every architecture: syscalls added since 5.1 share one table.
    private const long SysCachestat = 451;

    private static readonly Lazy<bool> s_available = new(Probe);

    public static bool IsAvailable => s_available.Value;

    public readonly record struct Stat(ulong CachedPages, ulong DirtyPages, ulong WritebackPages);

    /// <summary>Page cache state of the whole file.</summary>
    public static Stat Of(string path)
    {
        // A raw open: .NET's would take a shared flock, which the device's exclusive one refuses.
        int errno = Native.Open(path, Native.O_CLOEXEC, out SafeFileHandle handle); // O_RDONLY is 0
        using (handle)
        {
            return errno == 0 ? Of(handle) : throw new InvalidOperationException($"Cannot open '{path}': {Native.Describe(errno)}");
        }
    }

    private static unsafe Stat Of(SafeFileHandle handle)
    {
        CachestatRange range = default; // offset 0, length 0: to the end of the file
        Cachestat result = default;
        if (Syscall(SysCachestat, handle.DangerousGetHandle(), &range, &result, 0) != 0)
        {
            throw new InvalidOperationException($"cachestat failed: errno {Marshal.GetLastPInvokeError()}");
        }
        return new Stat(result.Cache, result.Dirty, result.Writeback);
    }

    private static bool Probe()
    {
        try
        {
            using var directory = new TempDirectory();
            File.WriteAllBytes(directory.File("probe"), [1]);
            Of(directory.File("probe"));
            return true;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static unsafe partial long Syscall(long number, nint fd, CachestatRange* range, Cachestat* result, long flags);

    [StructLayout(LayoutKind.Sequential)]
    private struct CachestatRange
    {
        public ulong Offset;
        public ulong Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Cachestat
    {
        public ulong Cache;
        public ulong Dirty;
        public ulong Writeback;
        public ulong Evicted;
        public ulong RecentlyEvicted;
    }
}

/// <summary>A theory that inspects the page cache; skipped on kernels without cachestat.</summary>
public sealed class PageCacheTheoryAttribute : TheoryAttribute
{
    public PageCacheTheoryAttribute()
    {
        if (!PageCache.IsAvailable)
        {
            Skip = "Needs cachestat(2), Linux 6.5 or later.";
        }
    }
}
