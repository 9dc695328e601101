using System.Net;
using System.Net.Sockets;
using EdgeBlock.Nvme.Tcp;
using EdgeBlock.PduFault;
using EdgeBlock.Transports.Tcp;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeBlock.Target.Tests;

/// <summary>
/// The receive path without a socket (TcpQueue.ConsumeReceived, as the fuzz harness drives it): regressions of
/// inputs that tests/fuzz found, each of which threw out of the receive loop (the connection dropped without a
/// C2HTermReq and the daemon logged "receive loop failed").
/// </summary>
public sealed class TcpQueueReceiveTests
{
    [Fact]
    public void H2CTermReq_AfterHeaderDigestNegotiated_EndsTheConnection_WithoutADigest()
    {
        // A TermReq has no digest fields: the 24-byte PDU was checked for a header digest past its end.
        var termReq = new byte[PduHeader.TermReqLength];
        TermReq.Write(termReq, PduType.H2CTermReq, TermReqFes.InvalidPduHeaderField, 0, []);

        int remaining = Receive([.. RawPduConnection.ICReq(headerDigest: true), .. termReq]);

        Assert.Equal(-1, remaining);
    }

    /// <summary>Feeds bytes to a fresh queue of a fresh target; returns what ConsumeReceived returns.</summary>
    private static int Receive(byte[] bytes)
    {
        var target = new NvmeTarget(NullLogger.Instance);
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0)); // the queue reads its local endpoint
        var queue = new TcpQueue(socket, target, NullLogger.Instance, EdgeBlock.Storage.DataBufferPool.Shared);
        try
        {
            bytes.CopyTo(queue.ReceiveSpace(0));
            return queue.ConsumeReceived(bytes.Length);
        }
        finally
        {
            queue.Detach();
        }
    }
}
