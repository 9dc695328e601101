using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace EdgeBlock.Interop;

/// <summary>The TCP transport's busy-poll read: recv(2) that never waits (see <c>TcpQueue.PollReceive</c>).</summary>
internal static unsafe partial class Native
{
    [LibraryImport(Libc, EntryPoint = "recv", SetLastError = true)]
    private static partial nint Recv(SafeSocketHandle socket, byte* buffer, nuint length, int flags);

    /// <summary>Bytes received now (0 at end of stream), or -1 with the errno (EAGAIN: nothing there yet).</summary>
    public static nint ReceiveNow(SafeSocketHandle socket, byte* buffer, int length, out int errno)
    {
        nint received = Recv(socket, buffer, (nuint)length, MSG_DONTWAIT);
        errno = received < 0 ? LastError : 0;
        return received;
    }
}
