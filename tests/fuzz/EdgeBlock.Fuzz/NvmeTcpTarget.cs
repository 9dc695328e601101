using System.Net;
using System.Net.Sockets;
using System.Text;
using EdgeBlock.Storage;
using EdgeBlock.Target;
using EdgeBlock.Transports.Tcp;

namespace EdgeBlock.Fuzz;

/// <summary>
/// NVMe/TCP from bytes to executed commands: the input is what hosts send on up to four connections of one
/// fresh target (one subsystem, namespace 1: 1 MiB in memory, 512-byte blocks), split by <see cref="QueueSeparator"/>:
/// the first is usually the admin queue, the next ones I/O queues that connect to its controller (CNTLID 1).
/// Each connection runs the real receive path (<see cref="TcpQueue.ConsumeReceived"/>: common header checks,
/// digests, ICReq, capsules, H2CData, then the target's parse and validation against the command table and
/// execution), fed as the socket would, without the socket.
/// Refusals are what the daemon does to bad input: a C2HTermReq and a close, or an NVMe error status.
/// A finding is an exception escaping the receive path (the daemon drops the connection and logs "receive
/// loop failed") or one caught around a command's execution (logged with its exception, answered Internal Error).
/// </summary>
internal sealed class NvmeTcpTarget
{
    public const string SubsystemNqn = "nqn.2024-01.io.edgeblock:fuzz";
    /// <summary>Starts the next connection; in the AFL dictionary (tests/fuzz/dict/nvme-tcp.dict).</summary>
    public static readonly byte[] QueueSeparator = "--queue--"u8.ToArray();
    private const int MaxQueues = 4;

    private readonly FindingLogger _logger = new();
    private readonly StoppedTime _time = new();

    public void Run(ReadOnlySpan<byte> input)
    {
        // A fresh target per input: controller IDs start at 1 and nothing is left over from an earlier input.
        var target = new NvmeTarget(_logger, _time);
        var subsystem = new Subsystem(SubsystemNqn, allowAnyHost: true);
        subsystem.AddNamespace(new Namespace(1, new MemoryBlockDevice(1 << 20, 512), new Guid("6c1f9a2e-0d3b-4e57-8a91-000000000001")));
        target.AddSubsystem(subsystem);

        var queues = new List<(TcpQueue Queue, Socket Socket)>(MaxQueues);
        try
        {
            while (queues.Count < MaxQueues)
            {
                int cut = input.IndexOf(QueueSeparator);
                var segment = cut < 0 || queues.Count == MaxQueues - 1 ? input : input[..cut];
                // TcpQueue reads its local endpoint at construction; a bound, unconnected socket has one.
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
                var queue = new TcpQueue(socket, target, _logger, EdgeBlock.Storage.DataBufferPool.Shared);
                queues.Add((queue, socket));
                Feed(queue, segment);
                _logger.ThrowIfFinding();
                if (segment.Length == input.Length) break;
                input = input[(cut + QueueSeparator.Length)..];
            }
        }
        finally
        {
            // As connections end in the daemon: I/O queues first, so the admin queue takes its controller along.
            for (int i = queues.Count - 1; i >= 0; i--)
            {
                queues[i].Queue.Detach();
                queues[i].Socket.Dispose();
            }
        }
        _logger.ThrowIfFinding();
        if (target.Controllers.Count != 0)
            throw new InvalidOperationException($"{target.Controllers.Count} controllers outlive their connections");
    }

    /// <summary>Hands the bytes to the queue as the receive loop does: as much as the buffer takes, then parse.</summary>
    private static void Feed(TcpQueue queue, ReadOnlySpan<byte> bytes)
    {
        int filled = 0;
        while (bytes.Length > 0)
        {
            var space = queue.ReceiveSpace(filled).Span;
            int n = Math.Min(space.Length, bytes.Length);
            bytes[..n].CopyTo(space);
            bytes = bytes[n..];
            filled = queue.ConsumeReceived(filled + n);
            if (filled < 0) return;
        }
    }
}

/// <summary>A clock that never moves: keep-alive and other timers never fire, so a run depends on its input only.</summary>
internal sealed class StoppedTime : TimeProvider
{
    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) => new NeverTimer();

    private sealed class NeverTimer : ITimer
    {
        public bool Change(TimeSpan dueTime, TimeSpan period) => true;
        public void Dispose() { }
        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
