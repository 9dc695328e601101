using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace EdgeBlock.Interop;

internal static partial class Native
{
    public const int AT_FDCWD = -100;
    public const int AT_SYMLINK_NOFOLLOW = 0x100;
    public const int AT_EMPTY_PATH = 0x1000;

    public const uint STATX_TYPE = 0x1;
    public const uint STATX_MODE = 0x2;
    public const uint STATX_UID = 0x8;
    public const uint STATX_MTIME = 0x40;
    public const uint STATX_INO = 0x100;
    public const uint STATX_SIZE = 0x200;
    public const uint STATX_BLOCKS = 0x400;
    public const uint STATX_DIOALIGN = 0x2000;
    public const uint STATX_BASIC = STATX_TYPE | STATX_MODE | STATX_SIZE | STATX_BLOCKS;

    public const int S_IFMT = 0xF000;
    public const int S_IFREG = 0x8000;
    public const int S_IFBLK = 0x6000;
    public const int S_IFSOCK = 0xC000;

    /// <summary>
    /// The kernel's struct statx (linux/stat.h). Unlike struct stat its layout is the same on
    /// every architecture, which is why we use it instead of stat.
    /// </summary>
    [StructLayout(LayoutKind.Explicit, Size = 256)]
    public struct StatX
    {
        [FieldOffset(0)] public uint Mask;
        [FieldOffset(4)] public uint BlockSize;
        [FieldOffset(20)] public uint Uid;
        [FieldOffset(28)] public ushort Mode;
        [FieldOffset(32)] public ulong Ino;
        [FieldOffset(40)] public ulong Size;
        /// <summary>Allocated space in 512-byte units, whatever the file system's block size.</summary>
        [FieldOffset(48)] public ulong Blocks;
        [FieldOffset(112)] public long MtimeSeconds;
        [FieldOffset(120)] public uint MtimeNanoseconds;
        [FieldOffset(128)] public uint RdevMajor;
        [FieldOffset(132)] public uint RdevMinor;
        [FieldOffset(152)] public uint DioMemAlign;
        [FieldOffset(156)] public uint DioOffsetAlign;

        public readonly int FileType => Mode & S_IFMT;
        public readonly bool IsRegularFile => FileType == S_IFREG;
        public readonly bool IsBlockDevice => FileType == S_IFBLK;
        public readonly bool IsSocket => FileType == S_IFSOCK;
    }

    // Each returns 0 or the errno.

    /// <summary>statx(2) of a path; with <paramref name="followLinks"/> false, of a symbolic link itself.</summary>
    public static int Stat(string path, uint mask, out StatX result, bool followLinks = true) =>
        StatxRaw(AT_FDCWD, path, followLinks ? 0 : AT_SYMLINK_NOFOLLOW, mask, out result) < 0 ? LastError : 0;

    /// <summary>statx(2) of an open descriptor.</summary>
    public static int Stat(SafeFileHandle fd, uint mask, out StatX result) =>
        StatxRaw(fd, string.Empty, AT_EMPTY_PATH, mask, out result) < 0 ? LastError : 0;

    /// <summary>statx(2) of a descriptor no SafeHandle owns.</summary>
    public static int Stat(int fd, uint mask, out StatX result) =>
        StatxRaw(fd, string.Empty, AT_EMPTY_PATH, mask, out result) < 0 ? LastError : 0;

    [LibraryImport(Libc, EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int StatxRaw(int dirFd, string path, int flags, uint mask, out StatX result);

    [LibraryImport(Libc, EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int StatxRaw(SafeFileHandle dirFd, string path, int flags, uint mask, out StatX result);
}
