using System.Runtime.InteropServices;

namespace EdgeBlock.Interop;

/// <summary>
/// errno values (asm-generic/errno-base.h and errno.h: the same on x86-64 and arm64) and how to read
/// and describe the last one. Calls return -1 (or a negative count) and leave errno for <see cref="LastError"/>.
/// </summary>
internal static partial class Native
{
    private const string Libc = "libc";

    public const int ENOENT = 2;
    public const int EINTR = 4;
    public const int EIO = 5;
    public const int EAGAIN = 11;
    public const int EWOULDBLOCK = EAGAIN;
    public const int EBUSY = 16;
    public const int EINVAL = 22;
    public const int ENOSPC = 28;
    public const int ENOSYS = 38;
    public const int EOPNOTSUPP = 95;
    public const int EDQUOT = 122;

    /// <summary>The errno of the last call made with SetLastError.</summary>
    public static int LastError => Marshal.GetLastPInvokeError();

    /// <summary>The C library's text for an errno, for messages a user reads.</summary>
    public static string Describe(int errno) => $"{Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})";
}
