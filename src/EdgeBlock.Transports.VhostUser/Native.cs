using System.Runtime.InteropServices;

namespace EdgeBlock.Interop;

/// <summary>
/// The vhost-user transport's part of the shared interop class (src/Common/Interop/Linux): Unix sockets
/// with descriptors passed by SCM_RIGHTS, poll, memfd (x86-64 and arm64 share these layouts).
/// Every call returns -1 and sets errno on failure; callers read it with LastError.
/// </summary>
internal static unsafe partial class Native
{
    public const int AF_UNIX = 1;
    public const int SOCK_STREAM = 1;
    public const int SOCK_CLOEXEC = 0x80000;
    public const int SOL_SOCKET = 1;
    public const int SCM_RIGHTS = 1;
    public const int MSG_CTRUNC = 0x8;
    public const int MSG_CMSG_CLOEXEC = 0x40000000;
    public const int SHUT_RDWR = 2;

    public const short POLLIN = 1;

    public const uint MFD_CLOEXEC = 1;

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

    [LibraryImport(Libc, EntryPoint = "recv", SetLastError = true)]
    public static partial nint Recv(int fd, void* buffer, nuint length, int flags);

    [LibraryImport(Libc, EntryPoint = "send", SetLastError = true)]
    public static partial nint Send(int fd, void* buffer, nuint length, int flags);

    [LibraryImport(Libc, EntryPoint = "poll", SetLastError = true)]
    public static partial int Poll(PollFd* fds, nuint count, int timeoutMs);

    [LibraryImport(Libc, EntryPoint = "memfd_create", SetLastError = true)]
    public static partial int MemfdCreate(byte* name, uint flags);

    public const int F_GET_SEALS = 1034;
    public const int F_SEAL_SHRINK = 0x2;

    [LibraryImport(Libc, EntryPoint = "fcntl", SetLastError = true)]
    public static partial int Fcntl(int fd, int command);

    [LibraryImport(Libc, EntryPoint = "ftruncate", SetLastError = true)]
    public static partial int Ftruncate(int fd, long length);

    /// <summary>Size of the file behind fd, or -1 (errno in LastError).</summary>
    public static long FileSize(int fd)
    {
        int errno = Stat(fd, STATX_SIZE, out StatX status);
        if (errno != 0)
        {
            Marshal.SetLastPInvokeError(errno);
            return -1;
        }
        return (long)status.Size;
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
}
