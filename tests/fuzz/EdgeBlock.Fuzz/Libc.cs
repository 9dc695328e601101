using System.Runtime.InteropServices;

namespace EdgeBlock.Fuzz;

/// <summary>The few system calls the vhost-user harness needs to play the front-end (socketpair, memfd, SCM_RIGHTS).</summary>
internal static unsafe partial class Libc
{
    public const int AF_UNIX = 1, SOCK_STREAM = 1, SOCK_CLOEXEC = 0x80000, SHUT_WR = 1;
    public const int SOL_SOCKET = 1, SO_SNDBUF = 7, SCM_RIGHTS = 1, MFD_CLOEXEC = 1;

    [LibraryImport("libc", SetLastError = true)]
    public static partial int socketpair(int domain, int type, int protocol, int* fds);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int setsockopt(int fd, int level, int name, int* value, uint length);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int shutdown(int fd, int how);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int close(int fd);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint write(int fd, byte* buffer, nuint length);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int ftruncate(int fd, long length);

    [LibraryImport("libc", EntryPoint = "memfd_create", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int memfd_create(string name, uint flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint sendmsg(int fd, MsgHdr* msg, int flags);

    [StructLayout(LayoutKind.Sequential)]
    public struct IoVec { public void* Base; public nuint Length; }

    [StructLayout(LayoutKind.Sequential)]
    public struct MsgHdr
    {
        public void* Name; public uint NameLength;
        public IoVec* Iov; public nuint IovLength;
        public void* Control; public nuint ControlLength;
        public int Flags;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct CmsgHdr { public nuint Length; public int Level; public int Type; }

    public static int Check(int result, string what) =>
        result >= 0 ? result : throw new IOException($"{what} failed: errno {Marshal.GetLastPInvokeError()}");

    /// <summary>A memfd of <paramref name="size"/> bytes holding <paramref name="contents"/> at its start.</summary>
    public static int MemoryFile(ReadOnlySpan<byte> contents, long size)
    {
        int fd = Check(memfd_create("edgeblock-fuzz", MFD_CLOEXEC), "memfd_create");
        Check(ftruncate(fd, size), "ftruncate");
        fixed (byte* p = contents)
            if (contents.Length > 0 && write(fd, p, (nuint)contents.Length) != contents.Length) throw new IOException("write to memfd failed");
        return fd;
    }

    /// <summary>Sends bytes with file descriptors attached (SCM_RIGHTS), as QEMU sends SET_MEM_TABLE.</summary>
    public static void SendWithFds(int socket, ReadOnlySpan<byte> bytes, ReadOnlySpan<int> fds)
    {
        int controlLength = sizeof(CmsgHdr) + ((fds.Length * sizeof(int) + 7) & ~7);
        byte* control = stackalloc byte[controlLength];
        new Span<byte>(control, controlLength).Clear();
        var cmsg = (CmsgHdr*)control;
        cmsg->Length = (nuint)(sizeof(CmsgHdr) + fds.Length * sizeof(int));
        cmsg->Level = SOL_SOCKET;
        cmsg->Type = SCM_RIGHTS;
        fds.CopyTo(new Span<int>(control + sizeof(CmsgHdr), fds.Length));
        fixed (byte* p = bytes)
        {
            var iov = new IoVec { Base = p, Length = (nuint)bytes.Length };
            var msg = new MsgHdr { Iov = &iov, IovLength = 1, Control = fds.Length > 0 ? control : null, ControlLength = fds.Length > 0 ? (nuint)controlLength : 0 };
            if (sendmsg(socket, &msg, 0) != bytes.Length) throw new IOException($"sendmsg failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }
}
