using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace EdgeBlock.Storage;

/// <summary>
/// The libc calls .NET does not expose: O_DIRECT opens, fdatasync, fallocate, block-device
/// ioctls, flock and statx. Wrappers retry EINTR and return the errno (0 on success) so the
/// I/O path can turn failures into <see cref="BlockStatus"/> values without exceptions.
/// </summary>
internal static partial class LinuxNative
{
    private const string Libc = "libc";

    public const int ENOENT = 2;
    public const int EINTR = 4;
    public const int EIO = 5;
    public const int EWOULDBLOCK = 11;
    public const int EBUSY = 16;
    public const int EINVAL = 22;
    public const int ENOSPC = 28;
    public const int EOPNOTSUPP = 95;
    public const int EDQUOT = 122;

    public const int O_RDWR = 0x2;
    public const int O_CREAT = 0x40;
    public const int O_EXCL = 0x80;
    public const int O_CLOEXEC = 0x80000;

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

    private const int AT_FDCWD = -100;
    private const int AT_EMPTY_PATH = 0x1000;
    public const uint STATX_TYPE = 0x1;
    public const uint STATX_MODE = 0x2;
    public const uint STATX_SIZE = 0x200;
    public const uint STATX_BLOCKS = 0x400;
    public const uint STATX_DIOALIGN = 0x2000;
    public const uint STATX_BASIC = STATX_TYPE | STATX_MODE | STATX_SIZE | STATX_BLOCKS;

    public const int S_IFMT = 0xF000;
    public const int S_IFREG = 0x8000;
    public const int S_IFBLK = 0x6000;

    /// <summary>
    /// The kernel's struct statx (linux/stat.h). Unlike struct stat its layout is the same on
    /// every architecture, which is why we use it instead of stat.
    /// </summary>
    [StructLayout(LayoutKind.Explicit, Size = 256)]
    public struct StatX
    {
        [FieldOffset(0)] public uint Mask;
        [FieldOffset(4)] public uint BlockSize;
        [FieldOffset(28)] public ushort Mode;
        [FieldOffset(40)] public ulong Size;
        /// <summary>Allocated space in 512-byte units, whatever the file system's block size.</summary>
        [FieldOffset(48)] public ulong Blocks;
        [FieldOffset(128)] public uint RdevMajor;
        [FieldOffset(132)] public uint RdevMinor;
        [FieldOffset(152)] public uint DioMemAlign;
        [FieldOffset(156)] public uint DioOffsetAlign;

        public readonly int FileType => Mode & S_IFMT;
        public readonly bool IsRegularFile => FileType == S_IFREG;
        public readonly bool IsBlockDevice => FileType == S_IFBLK;
    }

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

    [LibraryImport(Libc, EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int StatxRaw(int dirFd, string path, int flags, uint mask, out StatX result);

    [LibraryImport(Libc, EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int StatxRaw(SafeFileHandle dirFd, string path, int flags, uint mask, out StatX result);

    [LibraryImport(Libc, EntryPoint = "eventfd", SetLastError = true)]
    private static partial int EventFdRaw(uint initialValue, int flags);

    [LibraryImport(Libc, EntryPoint = "write", SetLastError = true)]
    private static unsafe partial nint WriteRaw(int fd, void* buffer, nuint count);

    [LibraryImport(Libc, EntryPoint = "close", SetLastError = true)]
    private static partial int CloseRaw(int fd);

    /// <summary>eventfd(2), close-on-exec: a counter another thread can wake a waiter with. Returns the descriptor or -errno.</summary>
    public static int CreateEventFd()
    {
        int fd = EventFdRaw(0, O_CLOEXEC);
        return fd >= 0 ? fd : -Marshal.GetLastPInvokeError();
    }

    /// <summary>Adds 1 to an eventfd's counter, waking whoever reads it.</summary>
    public static unsafe void SignalEventFd(int fd)
    {
        ulong one = 1;
        while (WriteRaw(fd, &one, sizeof(ulong)) < 0 && Marshal.GetLastPInvokeError() == EINTR)
        {
        }
    }

    /// <summary>close(2) of a descriptor no SafeHandle owns.</summary>
    public static void CloseDescriptor(int fd) => CloseRaw(fd);

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

    /// <summary>statx(2) of a path, following symbolic links.</summary>
    public static int Stat(string path, uint mask, out StatX result) =>
        StatxRaw(AT_FDCWD, path, flags: 0, mask, out result) < 0 ? Marshal.GetLastPInvokeError() : 0;

    /// <summary>statx(2) of an open descriptor.</summary>
    public static int Stat(SafeFileHandle fd, uint mask, out StatX result) =>
        StatxRaw(fd, string.Empty, AT_EMPTY_PATH, mask, out result) < 0 ? Marshal.GetLastPInvokeError() : 0;

    /// <summary>The C library's text for an errno, for error messages at open time.</summary>
    public static string Describe(int errno) => $"{Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})";
}
