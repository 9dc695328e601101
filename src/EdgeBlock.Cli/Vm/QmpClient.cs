using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace EdgeBlock.Cli.Vm;

/// <summary>
/// A minimal QMP client (QEMU's JSON control protocol) on a Unix socket: read the greeting,
/// negotiate capabilities, execute commands. Asynchronous events in between are skipped.
/// </summary>
internal sealed class QmpClient : IDisposable
{
    private readonly Socket _socket;
    private readonly StreamReader _reader;
    private readonly StreamWriter _writer;

    private QmpClient(Socket socket)
    {
        _socket = socket;
        var stream = new NetworkStream(socket, ownsSocket: false);
        _reader = new StreamReader(stream, Encoding.UTF8);
        _writer = new StreamWriter(stream, new UTF8Encoding(false)) { AutoFlush = true, NewLine = "\n" };
    }

    public static async Task<QmpClient> ConnectAsync(string path, CancellationToken cancellationToken)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        var client = new QmpClient(socket);
        try
        {
            using var greeting = await client.ReadMessageAsync(cancellationToken).ConfigureAwait(false);
            if (!greeting.RootElement.TryGetProperty("QMP", out _)) throw new QmpException($"{path} is not a QMP socket (no greeting)");
            await client.ExecuteAsync("qmp_capabilities", cancellationToken).ConfigureAwait(false);
            return client;
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    /// <summary>Runs a command without arguments; its "return" value, or a <see cref="QmpException"/> with QEMU's error.</summary>
    public async Task<JsonElement> ExecuteAsync(string command, CancellationToken cancellationToken)
    {
        await _writer.WriteLineAsync(JsonSerializer.Serialize(new { execute = command }).AsMemory(), cancellationToken).ConfigureAwait(false);
        while (true)
        {
            using var reply = await ReadMessageAsync(cancellationToken).ConfigureAwait(false);
            if (reply.RootElement.TryGetProperty("return", out var value)) return value.Clone();
            if (reply.RootElement.TryGetProperty("error", out var error))
                throw new QmpException($"QMP {command}: {(error.TryGetProperty("desc", out var d) ? d.GetString() : error.ToString())}");
        }
    }

    private async Task<JsonDocument> ReadMessageAsync(CancellationToken cancellationToken)
    {
        string line = await _reader.ReadLineAsync(cancellationToken).ConfigureAwait(false)
            ?? throw new QmpException("QEMU closed the QMP connection");
        return JsonDocument.Parse(line);
    }

    public void Dispose()
    {
        _reader.Dispose();
        _writer.Dispose();
        _socket.Dispose();
    }
}

/// <summary>QEMU answered a QMP command with an error, or the QMP connection broke.</summary>
internal sealed class QmpException(string message) : Exception(message);
