using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using EdgeBlock.Storage;
using EdgeBlock.Target;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeBlock.Transports.Tcp;

/// <summary>An NVMe/TCP port: listens, accepts, and runs one <see cref="TcpQueue"/> per connection.</summary>
public sealed class TcpTransport : IAsyncDisposable
{
    private readonly NvmeTarget _target;
    private readonly ILogger _logger;
    private readonly DataBufferPool _buffers;
    private readonly ConcurrentDictionary<TcpQueue, Task> _queues = new();
    private Socket? _listener;
    private Task? _acceptLoop;

    /// <param name="buffers">The daemon's data buffers under its memory budget, shared by every transport.</param>
    public TcpTransport(NvmeTarget target, ILogger? logger = null, DataBufferPool? buffers = null)
    {
        _target = target;
        _logger = logger ?? NullLogger.Instance;
        _buffers = buffers ?? DataBufferPool.Shared;
    }

    /// <summary>
    /// How long a connection's receive loop reads without waiting after each batch before it sleeps in epoll (0: never;
    /// see TcpQueue.PollReceive). Set before <see cref="Start"/>.
    /// </summary>
    public TimeSpan BusyPoll { get; init; }

    /// <summary>The bound address (with the real port when 0 was asked for).</summary>
    public IPEndPoint? LocalEndPoint => _listener?.LocalEndPoint as IPEndPoint;

    public int ConnectionCount => _queues.Count;

    /// <summary>The connections now (tests look at their slots).</summary>
    internal IEnumerable<TcpQueue> Queues => _queues.Keys;

    /// <summary>Binds and starts accepting. Throws with a clear message when the address is taken.</summary>
    public void Start(IPEndPoint endpoint)
    {
        var listener = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            listener.Bind(endpoint);
            listener.Listen(512);
        }
        catch (SocketException ex)
        {
            listener.Dispose();
            throw new InvalidOperationException($"cannot listen on {endpoint}: {ex.Message}", ex);
        }
        _listener = listener;
        _acceptLoop = AcceptLoopAsync(listener);
        _logger.LogInformation("NVMe/TCP listening on {Endpoint}", listener.LocalEndPoint);
    }

    private async Task AcceptLoopAsync(Socket listener)
    {
        while (true)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptAsync().ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                return;
            }
            socket.NoDelay = true;
            var queue = new TcpQueue(socket, _target, _logger, _buffers, BusyPoll);
            _queues[queue] = RunQueueAsync(queue);
        }
    }

    private async Task RunQueueAsync(TcpQueue queue)
    {
        await Task.Yield();
        try
        {
            await queue.RunAsync().ConfigureAwait(false);
        }
        finally
        {
            _queues.TryRemove(queue, out _);
        }
    }

    /// <summary>Stops accepting and closes every connection.</summary>
    public async ValueTask DisposeAsync()
    {
        _listener?.Dispose();
        if (_acceptLoop != null) await _acceptLoop.ConfigureAwait(false);
        foreach (var queue in _queues.Keys) queue.Abort("target shutting down");
        await Task.WhenAll(_queues.Values).ConfigureAwait(false);
    }
}
