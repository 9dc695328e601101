using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace EdgeBlock.Interop;

/// <summary>
/// Storage's part of the shared interop class (src/Common/Interop/Linux): the file calls .NET does not
/// expose: O_DIRECT opens, fdatasync, fallocate, block-device ioctls and flock. Wrappers retry EINTR and
/// return the errno (0 on success) so the I/O path can turn failures into BlockStatus values without exceptions.
/// </summary>
internal static partial class Native
{
    public const int O_RDWR = 0x2;
    public const int O_CREAT = 0x40;
    public const int O_EXCL = 0x80;

    /// <summary>
    /// O_DIRECT differs between architectures; 0 (no direct I/O) where we do not know it.
    /// .NET offers no way to set it: File.OpenHandle drops FileOptions 0x20000000 on Linux.
    /// </summary>
    public static int O_DIRECT { get; } = RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => 0x4000,
        Architecture.Arm64 => 0x10000,
        _ => 0,
    };

    public const int F_GETFL = 3;

    public const int FALLOC_FL_KEEP_SIZE = 0x01;
    public const int FALLOC_FL_PUNCH_HOLE = 0x02;
    public const int FALLOC_FL_ZERO_RANGE = 0x10;

    private const int LOCK_EX = 2;
    private const int LOCK_NB = 4;

    // _IO(0x12, 104) and _IOR(0x12, 114, u64): same encoding on x86-64 and arm64.
    private const nuint BLKSSZGET = 0x1268;
    private const nuint BLKGETSIZE64 = 0x80081272;

    [LibraryImport(Libc, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int OpenRaw(string path, int flags, int mode);

    [LibraryImport(Libc, EntryPoint = "fdatasync", SetLastError = true)]
    private static partial int FdatasyncRaw(SafeFileHandle fd);

    [LibraryImport(Libc, EntryPoint = "fallocate", SetLastError = true)]
    private static partial int FallocateRaw(SafeFileHandle fd, int mode, long offset, long length);

    [LibraryImport(Libc, EntryPoint = "flock", SetLastError = true)]
    private static partial int FlockRaw(SafeFileHandle fd, int operation);

    [LibraryImport(Libc, EntryPoint = "fcntl", SetLastError = true)]
    private static partial int FcntlRaw(SafeFileHandle fd, int command);

    [LibraryImport(Libc, EntryPoint = "ioctl", SetLastError = true)]
    private static partial int IoctlRaw(SafeFileHandle fd, nuint request, out ulong value);

    [LibraryImport(Libc, EntryPoint = "ioctl", SetLastError = true)]
    private static partial int IoctlRaw(SafeFileHandle fd, nuint request, out int value);

    /// <summary>open(2); on success the handle owns the descriptor.</summary>
    public static int Open(string path, int flags, out SafeFileHandle handle)
    {
        int fd;
        int errno;
        do
        {
            fd = OpenRaw(path, flags, mode: 0b110_100_100); // 0644 when O_CREAT creates it
            errno = fd < 0 ? Marshal.GetLastPInvokeError() : 0;
        }
        while (errno == EINTR);

        handle = new SafeFileHandle(fd, ownsHandle: fd >= 0);
        return errno;
    }

    public static int Fdatasync(SafeFileHandle fd)
    {
        int errno;
        do
        {
            errno = FdatasyncRaw(fd) < 0 ? Marshal.GetLastPInvokeError() : 0;
        }
        while (errno == EINTR);
        return errno;
    }

    public static int Fallocate(SafeFileHandle fd, int mode, long offset, long length)
    {
        int errno;
        do
        {
            errno = FallocateRaw(fd, mode, offset, length) < 0 ? Marshal.GetLastPInvokeError() : 0;
        }
        while (errno == EINTR);
        return errno;
    }

    /// <summary>Takes an exclusive advisory lock without waiting; EWOULDBLOCK when another holder has it.</summary>
    public static int LockExclusive(SafeFileHandle fd)
    {
        int errno;
        do
        {
            errno = FlockRaw(fd, LOCK_EX | LOCK_NB) < 0 ? Marshal.GetLastPInvokeError() : 0;
        }
        while (errno == EINTR);
        return errno;
    }

    /// <summary>The file status flags (O_DIRECT and friends) of an open descriptor.</summary>
    public static int GetStatusFlags(SafeFileHandle fd, out int flags)
    {
        flags = FcntlRaw(fd, F_GETFL);
        return flags < 0 ? Marshal.GetLastPInvokeError() : 0;
    }

    public static int GetBlockDeviceSize(SafeFileHandle fd, out ulong sizeBytes) =>
        IoctlRaw(fd, BLKGETSIZE64, out sizeBytes) < 0 ? Marshal.GetLastPInvokeError() : 0;

    public static int GetLogicalBlockSize(SafeFileHandle fd, out int blockSize) =>
        IoctlRaw(fd, BLKSSZGET, out blockSize) < 0 ? Marshal.GetLastPInvokeError() : 0;
}
