using EdgeBlock.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeBlock.Transports.VhostUser;

/// <summary>
/// Exports one <see cref="IBlockDevice"/> as a vhost-user-blk back-end on a Unix socket that the
/// front-end (QEMU: <c>-chardev socket,id=c0,path=SOCK -device vhost-user-blk-pci,chardev=c0</c>)
/// connects to. One front-end at a time; when it disconnects (QEMU stops, restarts, or broke the
/// protocol) its mappings and fds are released and the next connection is accepted, so a QEMU
/// with <c>reconnect=1</c> on its chardev comes back by itself.
/// </summary>
public sealed class VhostUserBlkServer : IAsyncDisposable
{
    private readonly BlkDeviceContext _ctx;
    private readonly ILogger _logger;
    private readonly object _gate = new();
    private int _listenFd = -1;
    private Thread? _acceptThread;
    private VhostUserBlkConnection? _connection;
    private volatile bool _stopping;
    private int _connections;
    private VhostUserBlkStatistics _ended; // sessions that ended

    public VhostUserBlkServer(string socketPath, IBlockDevice device, VhostUserBlkOptions? options = null, ILogger? logger = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(socketPath);
        ArgumentNullException.ThrowIfNull(device);
        options ??= new VhostUserBlkOptions();
        if (options.MaxQueues is < 1 or > 256)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxQueues, "MaxQueues must be 1..256 (vhost-user ring indices are 8 bits).");
        }
        if (options.DrainTimeout < TimeSpan.Zero && options.DrainTimeout != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.DrainTimeout, "DrainTimeout must not be negative (or Timeout.InfiniteTimeSpan).");
        }
        if (device.BlockSize < 512 || (device.BlockSize & (device.BlockSize - 1)) != 0)
        {
            throw new ArgumentException($"The device's block size {device.BlockSize} is not a power of two of at least 512 bytes.", nameof(device));
        }
        SocketPath = socketPath;
        _logger = logger ?? NullLogger.Instance;
        _ctx = new BlkDeviceContext(device, options, _logger);
    }

    public string SocketPath { get; }

    /// <summary>Front-end connections accepted so far.</summary>
    public int Connections => Volatile.Read(ref _connections);

    /// <summary>The session being served, if any (tests look at its queues).</summary>
    internal VhostUserBlkConnection? CurrentConnection
    {
        get { lock (_gate) { return _connection; } }
    }

    /// <summary>Totals over every session so far, the current one included.</summary>
    public VhostUserBlkStatistics Statistics
    {
        get
        {
            lock (_gate)
            {
                return _connection is null ? _ended : _ended + _connection.Statistics();
            }
        }
    }

    /// <summary>A front-end is connected now.</summary>
    public bool IsConnected => CurrentConnection is not null;

    /// <summary>Reason the last session ended.</summary>
    public string? LastDisconnectReason { get; private set; }

    /// <summary>Creates the socket (replacing a stale socket file) and starts accepting front-ends.</summary>
    public unsafe void Start()
    {
        if (_acceptThread is not null)
        {
            throw new InvalidOperationException("The server is already started.");
        }
        if (!Native.MakeAddress(SocketPath, out Native.SockAddrUn address, out uint length))
        {
            throw new ArgumentException($"The socket path '{SocketPath}' is empty or longer than 107 bytes; choose a shorter path.");
        }
        if (IsUnixSocket(SocketPath))
        {
            if (SomeoneListens(address, length))
            {
                throw new IOException($"Another back-end is serving '{SocketPath}'; stop it or choose another socket path.");
            }
            File.Delete(SocketPath); // a stale socket of an earlier run
        }
        else if (File.Exists(SocketPath) || Directory.Exists(SocketPath))
        {
            throw new IOException($"'{SocketPath}' exists and is not a socket; remove it or choose another path.");
        }
        int fd = Native.Socket(Native.AF_UNIX, Native.SOCK_STREAM | Native.SOCK_CLOEXEC, 0);
        if (fd < 0)
        {
            throw new IOException($"socket(AF_UNIX) failed: {Native.Describe(Native.LastError)}");
        }
        if (Native.Bind(fd, &address, length) != 0 || Native.Listen(fd, 4) != 0)
        {
            int errno = Native.LastError;
            Native.Close(fd);
            throw new IOException($"Cannot listen on '{SocketPath}': {Native.Describe(errno)}.");
        }
        _listenFd = fd;
        _acceptThread = new Thread(AcceptLoop) { IsBackground = true, Name = "vhost-blk accept" };
        _acceptThread.Start();
        _logger.LogInformation("vhost-user-blk: serving {Bytes} bytes ({Block}-byte blocks) on {Socket}",
            _ctx.Device.BlockCount * _ctx.Device.BlockSize, _ctx.BlockSize, SocketPath);
    }

    private static unsafe bool SomeoneListens(Native.SockAddrUn address, uint length)
    {
        int fd = Native.Socket(Native.AF_UNIX, Native.SOCK_STREAM | Native.SOCK_CLOEXEC, 0);
        if (fd < 0)
        {
            return false;
        }
        bool connected = Native.Connect(fd, &address, length) == 0;
        Native.Close(fd);
        return connected;
    }

    private static bool IsUnixSocket(string path) =>
        Native.Stat(path, Native.STATX_TYPE, out Native.StatX status, followLinks: false) == 0 && status.IsSocket;

    private unsafe void AcceptLoop()
    {
        while (!_stopping)
        {
            int fd = Native.Accept4(_listenFd, null, null, Native.SOCK_CLOEXEC);
            if (fd < 0)
            {
                int errno = Native.LastError;
                if (errno == Native.EINTR)
                {
                    continue;
                }
                if (!_stopping)
                {
                    _logger.LogError("vhost-user-blk: accept on {Socket} failed: {Error}", SocketPath, Native.Describe(errno));
                    Thread.Sleep(100);
                }
                continue;
            }
            var connection = new VhostUserBlkConnection(fd, _ctx);
            lock (_gate)
            {
                if (_stopping)
                {
                    connection.Dispose();
                    break;
                }
                _connection = connection;
            }
            Interlocked.Increment(ref _connections);
            _logger.LogInformation("vhost-user-blk: front-end connected on {Socket}", SocketPath);
            string reason;
            try
            {
                reason = connection.Run();
            }
            catch (Exception e)
            {
                // Nothing a front-end sends may take the daemon down: log, drop that session, go on.
                _logger.LogError(e, "vhost-user-blk: the session failed unexpectedly; closing it");
                reason = "internal error: " + e.Message;
            }
            lock (_gate)
            {
                _connection = null;
                connection.Dispose(); // stops the queues: their counts are final
                _ended += connection.Statistics();
            }
            LastDisconnectReason = reason;
            _logger.LogInformation("vhost-user-blk: front-end disconnected ({Reason}); waiting for the next one", reason);
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stopping = true;
        lock (_gate)
        {
            if (_listenFd >= 0)
            {
                Native.Shutdown(_listenFd, Native.SHUT_RDWR);
            }
            _connection?.Shutdown();
        }
        Thread? thread = _acceptThread;
        if (thread is not null)
        {
            await Task.Run(thread.Join).ConfigureAwait(false);
        }
        bool bound = _listenFd >= 0;
        Native.CloseQuietly(ref _listenFd);
        try
        {
            // Only a socket this server bound: one that refused to start must not remove another back-end's.
            if (bound && IsUnixSocket(SocketPath))
            {
                File.Delete(SocketPath);
            }
        }
        catch (IOException)
        {
        }
    }
}
