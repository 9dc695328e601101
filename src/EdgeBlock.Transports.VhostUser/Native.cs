using System.Runtime.InteropServices;

namespace EdgeBlock.Transports.VhostUser;

/// <summary>
/// The few Linux system calls the transport needs (x86-64 and arm64 share these layouts).
/// Every call returns -1 and sets errno on failure; callers read it with Marshal.GetLastPInvokeError.
/// </summary>
internal static unsafe partial class Native
{
    private const string Libc = "libc";

    public const int AF_UNIX = 1;
    public const int SOCK_STREAM = 1;
    public const int SOCK_CLOEXEC = 0x80000;
    public const int SOL_SOCKET = 1;
    public const int SCM_RIGHTS = 1;
    public const int MSG_NOSIGNAL = 0x4000;
    public const int MSG_CTRUNC = 0x8;
    public const int MSG_CMSG_CLOEXEC = 0x40000000;
    public const int SHUT_RDWR = 2;

    public const int EINTR = 4;
    public const int EAGAIN = 11;

    public const int PROT_READ = 1;
    public const int PROT_WRITE = 2;
    public const int MAP_SHARED = 1;
    public static readonly nint MAP_FAILED = -1;

    public const int EFD_CLOEXEC = 0x80000;
    public const int EFD_NONBLOCK = 0x800;

    public const short POLLIN = 1;

    public const int AT_EMPTY_PATH = 0x1000;
    public const uint STATX_SIZE = 0x200;

    public const uint MFD_CLOEXEC = 1;

    [StructLayout(LayoutKind.Sequential)]
    public struct IoVec
    {
        public void* Base;
        public nuint Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct MsgHdr
    {
        public void* Name;
        public uint NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct CmsgHdr
    {
        public nuint Length;
        public int Level;
        public int Type;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct SockAddrUn
    {
        public ushort Family;
        public fixed byte Path[108];
    }

    public static int CmsgAlign(int length) => (length + 7) & ~7;
    public static int CmsgSpace(int dataLength) => sizeof(CmsgHdr) + CmsgAlign(dataLength);
    public static int CmsgLen(int dataLength) => sizeof(CmsgHdr) + dataLength;

    [LibraryImport(Libc, EntryPoint = "socket", SetLastError = true)]
    public static partial int Socket(int domain, int type, int protocol);

    [LibraryImport(Libc, EntryPoint = "bind", SetLastError = true)]
    public static partial int Bind(int fd, SockAddrUn* addr, uint length);

    [LibraryImport(Libc, EntryPoint = "connect", SetLastError = true)]
    public static partial int Connect(int fd, SockAddrUn* addr, uint length);

    [LibraryImport(Libc, EntryPoint = "listen", SetLastError = true)]
    public static partial int Listen(int fd, int backlog);

    [LibraryImport(Libc, EntryPoint = "accept4", SetLastError = true)]
    public static partial int Accept4(int fd, void* addr, void* length, int flags);

    [LibraryImport(Libc, EntryPoint = "shutdown", SetLastError = true)]
    public static partial int Shutdown(int fd, int how);

    [LibraryImport(Libc, EntryPoint = "recvmsg", SetLastError = true)]
    public static partial nint RecvMsg(int fd, MsgHdr* msg, int flags);

    [LibraryImport(Libc, EntryPoint = "sendmsg", SetLastError = true)]
    public static partial nint SendMsg(int fd, MsgHdr* msg, int flags);

    [LibraryImport(Libc, EntryPoint = "recv", SetLastError = true)]
    public static partial nint Recv(int fd, void* buffer, nuint length, int flags);

    [LibraryImport(Libc, EntryPoint = "send", SetLastError = true)]
    public static partial nint Send(int fd, void* buffer, nuint length, int flags);

    [LibraryImport(Libc, EntryPoint = "read", SetLastError = true)]
    public static partial nint Read(int fd, void* buffer, nuint length);

    [LibraryImport(Libc, EntryPoint = "write", SetLastError = true)]
    public static partial nint Write(int fd, void* buffer, nuint length);

    [LibraryImport(Libc, EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport(Libc, EntryPoint = "poll", SetLastError = true)]
    public static partial int Poll(PollFd* fds, nuint count, int timeoutMs);

    [LibraryImport(Libc, EntryPoint = "eventfd", SetLastError = true)]
    public static partial int EventFd(uint initial, int flags);

    [LibraryImport(Libc, EntryPoint = "mmap", SetLastError = true)]
    public static partial nint Mmap(nint addr, nuint length, int prot, int flags, int fd, long offset);

    [LibraryImport(Libc, EntryPoint = "munmap", SetLastError = true)]
    public static partial int Munmap(nint addr, nuint length);

    [LibraryImport(Libc, EntryPoint = "statx", SetLastError = true)]
    public static partial int Statx(int dirfd, byte* path, int flags, uint mask, byte* buffer);

    [LibraryImport(Libc, EntryPoint = "memfd_create", SetLastError = true)]
    public static partial int MemfdCreate(byte* name, uint flags);

    public const int F_GET_SEALS = 1034;
    public const int F_SEAL_SHRINK = 0x2;

    [LibraryImport(Libc, EntryPoint = "fcntl", SetLastError = true)]
    public static partial int Fcntl(int fd, int command);

    [LibraryImport(Libc, EntryPoint = "ftruncate", SetLastError = true)]
    public static partial int Ftruncate(int fd, long length);

    public static int LastError => Marshal.GetLastPInvokeError();

    public static string Describe(int errno) => $"{Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})";

    /// <summary>Size of the file behind fd, or -1 (errno in LastError).</summary>
    public static long FileSize(int fd)
    {
        byte* buffer = stackalloc byte[256];
        byte empty = 0;
        if (Statx(fd, &empty, AT_EMPTY_PATH, STATX_SIZE, buffer) != 0)
        {
            return -1;
        }
        return *(long*)(buffer + 40);
    }

    /// <summary>Signals an eventfd (adds 1). Errors are ignored: a peer that closed its end has gone away.</summary>
    public static void Signal(int fd)
    {
        if (fd < 0)
        {
            return;
        }
        ulong one = 1;
        while (Write(fd, &one, 8) < 0 && LastError == EINTR)
        {
        }
    }

    /// <summary>Drains an eventfd's counter (non-blocking or after poll said it is readable).</summary>
    public static void Drain(int fd)
    {
        ulong value;
        while (Read(fd, &value, 8) < 0 && LastError == EINTR)
        {
        }
    }

    /// <summary>Fills an AF_UNIX address; false if the path does not fit.</summary>
    public static bool MakeAddress(string path, out SockAddrUn address, out uint length)
    {
        address = default;
        length = 0;
        byte[] bytes = System.Text.Encoding.UTF8.GetBytes(path);
        if (bytes.Length == 0 || bytes.Length >= 108)
        {
            return false;
        }
        address.Family = AF_UNIX;
        fixed (byte* p = address.Path)
        {
            bytes.CopyTo(new Span<byte>(p, 108));
        }
        length = (uint)(2 + bytes.Length + 1);
        return true;
    }

    public static void CloseQuietly(ref int fd)
    {
        if (fd >= 0)
        {
            Close(fd);
            fd = -1;
        }
    }
}
