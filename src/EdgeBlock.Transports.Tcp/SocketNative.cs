using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace EdgeBlock.Transports.Tcp;

/// <summary>One piece of a gathered write: struct iovec.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct Iovec
{
    public byte* Base;
    public nuint Length;
}

/// <summary>
/// sendmsg(2) with an iovec array, which .NET offers only through Socket.Send(IList&lt;ArraySegment&gt;):
/// that allocates per call and takes managed arrays only, while C2HData payloads live in the command
/// slots' native buffers. Linux (64-bit) layout of struct msghdr.
/// </summary>
internal static unsafe partial class SocketNative
{
    public const int EINTR = 4;
    public const int EAGAIN = 11;
    private const int MSG_DONTWAIT = 0x40;
    private const int MSG_NOSIGNAL = 0x4000;

    /// <summary>The kernel refuses more pieces per call (UIO_MAXIOV).</summary>
    public const int MaxIov = 1024;

    [StructLayout(LayoutKind.Sequential)]
    private struct MsgHdr
    {
        public void* Name;
        public uint NameLength;
        public Iovec* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    /// <summary>Whether gathered writes with sendmsg work here (64-bit Linux, where the layout above is right).</summary>
    public static bool IsSupported { get; } = OperatingSystem.IsLinux() && IntPtr.Size == 8;

    [LibraryImport("libc", EntryPoint = "sendmsg", SetLastError = true)]
    private static partial nint SendMsgRaw(SafeSocketHandle socket, MsgHdr* message, int flags);

    /// <summary>
    /// Sends what fits into the socket now, without waiting and without SIGPIPE. Returns the bytes sent,
    /// or -1 with the errno (EAGAIN when the socket's send buffer is full).
    /// </summary>
    public static nint SendGathered(SafeSocketHandle socket, Iovec* iov, int count, out int errno)
    {
        MsgHdr message = default;
        message.Iov = iov;
        message.IovLength = (nuint)count;
        nint sent = SendMsgRaw(socket, &message, MSG_DONTWAIT | MSG_NOSIGNAL);
        errno = sent < 0 ? Marshal.GetLastPInvokeError() : 0;
        return sent;
    }
}
