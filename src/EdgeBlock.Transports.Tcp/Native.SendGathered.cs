using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace EdgeBlock.Interop;

/// <summary>
/// The TCP transport's part of the shared interop class (src/Common/Interop/Linux): sendmsg(2) with an
/// iovec array, which .NET offers only through Socket.Send(IList&lt;ArraySegment&gt;): that allocates per
/// call and takes managed arrays only, while C2HData payloads live in the command slots' native buffers.
/// </summary>
internal static unsafe partial class Native
{
    /// <summary>Whether gathered writes with sendmsg work here (64-bit Linux, where the msghdr layout is right).</summary>
    public static bool IsGatheredSendSupported { get; } = OperatingSystem.IsLinux() && IntPtr.Size == 8;

    [LibraryImport(Libc, EntryPoint = "sendmsg", SetLastError = true)]
    private static partial nint SendMsg(SafeSocketHandle socket, MsgHdr* message, int flags);

    /// <summary>
    /// Sends what fits into the socket now, without waiting and without SIGPIPE. Returns the bytes sent,
    /// or -1 with the errno (EAGAIN when the socket's send buffer is full).
    /// </summary>
    public static nint SendGathered(SafeSocketHandle socket, IoVec* iov, int count, out int errno)
    {
        MsgHdr message = default;
        message.Iov = iov;
        message.IovLength = (nuint)count;
        nint sent = SendMsg(socket, &message, MSG_DONTWAIT | MSG_NOSIGNAL);
        errno = sent < 0 ? LastError : 0;
        return sent;
    }
}
