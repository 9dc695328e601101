using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using EdgeBlock.Api;

namespace EdgeBlock.Cli;

/// <summary>HTTP/JSON to the daemon's management API over its Unix socket.</summary>
public sealed class ApiClient : IDisposable
{
    private readonly HttpClient _http;
    private readonly HttpClient _streaming; // the same connections, no timeout: a streamed image takes as long as it takes

    public ApiClient(string socketPath)
    {
        SocketPath = socketPath;
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, cancellationToken) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        _http = new HttpClient(handler) { BaseAddress = new Uri("http://edgeblock/"), Timeout = TimeSpan.FromSeconds(60) };
        _streaming = new HttpClient(handler, disposeHandler: false) { BaseAddress = _http.BaseAddress, Timeout = Timeout.InfiniteTimeSpan };
    }

    public string SocketPath { get; }

    public static string Escape(string segment) => Uri.EscapeDataString(segment);

    /// <summary>The response body (JSON) of a successful request; refusals and an absent daemon throw.</summary>
    public async Task<string> SendAsync(HttpMethod method, string path, object? body = null, CancellationToken cancellationToken = default)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body != null) request.Content = JsonContent.Create(body, body.GetType(), options: ApiJson.Options);
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException ex) when (ex.InnerException is SocketException || ex.HttpRequestError == HttpRequestError.ConnectionError)
        {
            throw new DaemonUnreachableException(SocketPath, !File.Exists(SocketPath) ? "the socket does not exist"
                : (ex.InnerException as SocketException)?.Message ?? ex.Message);
        }
        using (response)
        {
            string text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            if (response.IsSuccessStatusCode) return text;
            throw DaemonRefusedException.From(response.StatusCode, text);
        }
    }

    /// <summary>
    /// Posts a stream as the request body (an image from stdin) and answers the response body; no timeout, the stream
    /// takes as long as it takes. Refusals and an absent daemon throw as for <see cref="SendAsync"/>.
    /// </summary>
    public async Task<string> PostStreamAsync(string path, Stream body, CancellationToken cancellationToken = default)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StreamContent(body, 1 << 20) };
        request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/octet-stream");
        HttpResponseMessage response;
        try
        {
            response = await _streaming.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException ex) when (ex.InnerException is SocketException || ex.HttpRequestError == HttpRequestError.ConnectionError)
        {
            throw new DaemonUnreachableException(SocketPath, (ex.InnerException as SocketException)?.Message ?? ex.Message);
        }
        using (response)
        {
            string text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            if (response.IsSuccessStatusCode) return text;
            throw DaemonRefusedException.From(response.StatusCode, text);
        }
    }

    public async Task<T> GetAsync<T>(string path, CancellationToken cancellationToken = default) =>
        Parse<T>(await SendAsync(HttpMethod.Get, path, null, cancellationToken).ConfigureAwait(false));

    public static T Parse<T>(string json) => JsonSerializer.Deserialize<T>(json, ReadOptions)!;

    private static readonly JsonSerializerOptions ReadOptions = new(ApiJson.Options) { UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Skip };

    public void Dispose()
    {
        _streaming.Dispose();
        _http.Dispose();
    }
}

/// <summary>No daemon answered on the socket.</summary>
public sealed class DaemonUnreachableException(string socketPath, string reason) : Exception($"no EdgeBlock daemon answers on {socketPath}: {reason}")
{
    public string SocketPath { get; } = socketPath;
}

/// <summary>The daemon refused the request (an RFC 7807 problem).</summary>
public sealed class DaemonRefusedException(int status, string title, string detail) : Exception(detail)
{
    public int Status { get; } = status;
    public string Title { get; } = title;
    public string Detail { get; } = detail;

    public static DaemonRefusedException From(HttpStatusCode status, string body)
    {
        string title = status.ToString(), detail = body;
        try
        {
            Problem? problem = ApiClient.Parse<Problem?>(body);
            title = problem?.Title ?? title;
            detail = problem?.Detail ?? title;
        }
        catch (JsonException)
        {
            if (string.IsNullOrWhiteSpace(detail)) detail = $"HTTP {(int)status} {status}";
        }
        return new DaemonRefusedException((int)status, title, detail);
    }
}
