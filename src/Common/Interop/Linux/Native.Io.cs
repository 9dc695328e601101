using System.Runtime.InteropServices;

namespace EdgeBlock.Interop;

/// <summary>read, write and close of raw descriptors, and eventfd(2) built on them.</summary>
internal static unsafe partial class Native
{
    public const int O_CLOEXEC = 0x80000;
    public const int EFD_CLOEXEC = O_CLOEXEC;
    public const int EFD_NONBLOCK = 0x800;

    [LibraryImport(Libc, EntryPoint = "read", SetLastError = true)]
    public static partial nint Read(int fd, void* buffer, nuint length);

    [LibraryImport(Libc, EntryPoint = "write", SetLastError = true)]
    public static partial nint Write(int fd, void* buffer, nuint length);

    [LibraryImport(Libc, EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    /// <summary>Closes a descriptor no SafeHandle owns, if open, and marks it closed (-1).</summary>
    public static void CloseQuietly(ref int fd)
    {
        if (fd >= 0)
        {
            Close(fd);
            fd = -1;
        }
    }

    /// <summary>eventfd(2): a counter one thread can wake another with. The descriptor, or -1 (errno in LastError).</summary>
    [LibraryImport(Libc, EntryPoint = "eventfd", SetLastError = true)]
    public static partial int EventFd(uint initial, int flags);

    /// <summary>Adds 1 to an eventfd's counter, waking whoever waits on it. Errors are ignored: a peer that closed its end has gone.</summary>
    public static void Signal(int fd)
    {
        if (fd < 0)
        {
            return;
        }
        ulong one = 1;
        while (Write(fd, &one, sizeof(ulong)) < 0 && LastError == EINTR)
        {
        }
    }

    /// <summary>Drains an eventfd's counter (non-blocking, or after poll said it is readable).</summary>
    public static void Drain(int fd)
    {
        ulong value;
        while (Read(fd, &value, sizeof(ulong)) < 0 && LastError == EINTR)
        {
        }
    }
}
