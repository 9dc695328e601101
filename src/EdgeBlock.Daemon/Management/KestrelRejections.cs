using System.Collections.Concurrent;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace EdgeBlock.Daemon.Management;

/// <summary>
/// Makes the requests Kestrel refuses before any middleware runs — request line too long (414), headers too large
/// (431), headers too slow (408), not HTTP (400) — answer problem+json too. Kestrel writes those answers itself with
/// an empty body and offers no hook to change them; it does announce each refusal, synchronously and before writing
/// the answer, as the DiagnosticSource event "Microsoft.AspNetCore.Server.Kestrel.BadRequest". So a connection
/// middleware keeps each connection's output writer, the event arms it, and the writer swaps Kestrel's empty answer
/// for the same status with a body (<see cref="RejectionRewritingPipeWriter"/>).
/// </summary>
internal sealed class KestrelRejections : IObserver<KeyValuePair<string, object?>>
{
    private const string BadRequestEvent = "Microsoft.AspNetCore.Server.Kestrel.BadRequest";
    private readonly ConcurrentDictionary<string, RejectionRewritingPipeWriter> _connections = new();
    private KestrelServerLimits _limits = new();

    /// <summary>Adds the connection middleware to a listener (HTTP/1.1 only: the rewriter reads HTTP/1.1 answers).</summary>
    public void Use(ListenOptions listen)
    {
        _limits = listen.KestrelServerOptions.Limits;
        listen.Protocols = HttpProtocols.Http1;
        listen.Use(next => async connection =>
        {
            var transport = connection.Transport;
            var writer = new RejectionRewritingPipeWriter(transport.Output);
            connection.Transport = new DuplexPipe(transport.Input, writer);
            _connections[connection.ConnectionId] = writer;
            try
            {
                await next(connection).ConfigureAwait(false);
            }
            finally
            {
                _connections.TryRemove(connection.ConnectionId, out _);
                connection.Transport = transport;
            }
        });
    }

    /// <summary>Listens to the host's DiagnosticListener (the one Kestrel writes to); dispose to stop.</summary>
    public IDisposable Subscribe(System.Diagnostics.DiagnosticListener listener) => listener.Subscribe(this, name => name == BadRequestEvent);

    public void OnNext(KeyValuePair<string, object?> value)
    {
        if (value.Key != BadRequestEvent || value.Value is not IFeatureCollection features) return;
        if (features.Get<IBadRequestExceptionFeature>()?.Error is not Microsoft.AspNetCore.Http.BadHttpRequestException error) return;
        if (features.Get<IHttpConnectionFeature>()?.ConnectionId is not { } id || !_connections.TryGetValue(id, out var writer)) return;
        if (Microsoft.AspNetCore.Http.HttpMethods.IsHead(features.Get<IHttpRequestFeature>()?.Method ?? "")) return; // an answer to HEAD has no body
        writer.Arm(error.StatusCode, WebRefusals.ServerDetail(error, _limits));
    }

    public void OnError(Exception error) { }
    public void OnCompleted() { }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;
        public PipeWriter Output { get; } = output;
    }
}
