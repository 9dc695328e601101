using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace EdgeBlock.Management.Tests;

/// <summary>
/// The web layer's own refusals on the API socket — routing's, Kestrel's limits, including those Kestrel answers
/// before any middleware runs — are problem+json naming what was wrong, sent by a raw socket client.
/// </summary>
public sealed class WebRefusalTests
{
    private static readonly string LongQuery = new('a', 9000);
    private static readonly string BigHeader = new('b', 40_000);

    [Theory]
    [InlineData(404, "GET /v1/no-such-thing HTTP/1.1\r\n", "", "GET /v1/no-such-thing")]
    [InlineData(405, "PUT /v1/status HTTP/1.1\r\n", "", "allowed: GET")]
    [InlineData(415, "POST /v1/listeners HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n", "x", "not text/plain")]
    [InlineData(413, "POST /v1/listeners HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 40000000\r\n", "{", "30000000 bytes (MaxRequestBodySize)")]
    [InlineData(414, "GET /v1/status?LONG HTTP/1.1\r\n", "", "8192 bytes (MaxRequestLineSize)")]
    [InlineData(431, "GET /v1/status HTTP/1.1\r\nX-Big: BIG\r\n", "", "32768 bytes in all (MaxRequestHeadersTotalSize)")]
    [InlineData(400, "GARBAGE\r\n", "", "not valid HTTP/1.1")]
    public async Task WebLayerRefusal_IsProblemJson_NamingTheProblem(int status, string head, string body, string detailMentions)
    {
        await using var d = await TestDaemon.StartAsync();
        string request = head.Replace("LONG", LongQuery).Replace("BIG", BigHeader) + "Host: edgeblock\r\nConnection: close\r\n\r\n" + body;

        var response = await RawHttp.SendAsync(d.Socket, request);

        AssertProblem(response, status, detailMentions);
    }

    [Fact]
    public async Task WebLayerRefusal_BodySlowerThanTheMinimumRate_Is408ProblemJson()
    {
        await using var d = await TestDaemon.StartAsync();
        string head = "POST /v1/listeners HTTP/1.1\r\nHost: edgeblock\r\nContent-Type: application/json\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n{";

        // One byte a second for three seconds, then nothing: well under Kestrel's 240 bytes/s once its 5 s grace
        // period is over. The trickle stops before the server gives up, so no byte is left unread when it closes
        // (a Unix socket closed with unread data resets its peer, which may then miss the answer).
        var response = await RawHttp.SendAsync(d.Socket, head, trickle: TimeSpan.FromSeconds(1));

        AssertProblem(response, 408, "(MinRequestBodyDataRate)");
    }

    [Fact]
    public async Task WebLayerRefusal_HeadersNeverFinished_Is408ProblemJson_AfterTheApiHeadersTimeout()
    {
        await using var d = await TestDaemon.StartAsync();
        var clock = Stopwatch.StartNew();

        var response = await RawHttp.SendAsync(d.Socket, "GET /v1/status HTTP/1.1\r\nHost: edgeblock\r\n");

        AssertProblem(response, 408, "within 10 s (RequestHeadersTimeout)");
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(9), TimeSpan.FromSeconds(25));
    }

    private static void AssertProblem(RawResponse response, int status, string detailMentions)
    {
        Assert.True(response.Status == status, response.ToString());
        Assert.Equal("application/problem+json", response.Header("Content-Type"));
        var problem = JsonDocument.Parse(response.Body).RootElement;
        Assert.Equal(status, problem.GetProperty("status").GetInt32());
        Assert.False(string.IsNullOrEmpty(problem.GetProperty("title").GetString()), response.ToString());
        Assert.Contains(detailMentions, problem.GetProperty("detail").GetString());
    }
}

internal sealed record RawResponse(int Status, IReadOnlyList<KeyValuePair<string, string>> Headers, string Body)
{
    public string? Header(string name) =>
        Headers.FirstOrDefault(h => h.Key.Equals(name, StringComparison.OrdinalIgnoreCase)).Value;

    public override string ToString() => $"{Status}\n{string.Join('\n', Headers.Select(h => $"{h.Key}: {h.Value}"))}\n\n{Body}";
}

/// <summary>HTTP/1.1 by hand over the API's Unix socket, so requests no well-behaved client sends can be sent.</summary>
internal static class RawHttp
{
    /// <summary>Sends the request (then, with <paramref name="trickle"/>, a space per interval, three at most) and reads the answer to the server's close.</summary>
    public static async Task<RawResponse> SendAsync(string socketPath, string request, TimeSpan? trickle = null)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath));
        await socket.SendAsync(Encoding.UTF8.GetBytes(request));
        using var trickling = new CancellationTokenSource();
        var sender = trickle is { } every ? TrickleAsync(socket, every, trickling.Token) : Task.CompletedTask;
        var received = new MemoryStream();
        var buffer = new byte[64 * 1024];
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        int n;
        while ((n = await socket.ReceiveAsync(buffer, SocketFlags.None, deadline.Token)) > 0) received.Write(buffer, 0, n);
        await trickling.CancelAsync();
        await sender;
        return Parse(Encoding.UTF8.GetString(received.ToArray()));
    }

    private static async Task TrickleAsync(Socket socket, TimeSpan every, CancellationToken stop)
    {
        try
        {
            for (int sent = 0; sent < 3; sent++)
            {
                await Task.Delay(every, stop);
                await socket.SendAsync(" "u8.ToArray(), stop);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException) { }
    }

    private static RawResponse Parse(string text)
    {
        int end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        Assert.True(end > 0, $"no HTTP answer: '{text}'");
        string[] lines = text[..end].Split("\r\n");
        var headers = lines[1..].Select(l => l.Split(':', 2)).Select(p => KeyValuePair.Create(p[0].Trim(), p[1].Trim())).ToList();
        string body = text[(end + 4)..];
        var response = new RawResponse(int.Parse(lines[0].Split(' ')[1]), headers, body);
        return response.Header("Transfer-Encoding") == "chunked" ? response with { Body = Dechunk(body) } : response;
    }

    private static string Dechunk(string chunked)
    {
        var body = new StringBuilder();
        int at = 0;
        while (true)
        {
            int lineEnd = chunked.IndexOf("\r\n", at, StringComparison.Ordinal);
            int size = Convert.ToInt32(chunked[at..lineEnd], 16);
            if (size == 0) return body.ToString();
            body.Append(chunked, lineEnd + 2, size);
            at = lineEnd + 2 + size + 2;
        }
    }
}
