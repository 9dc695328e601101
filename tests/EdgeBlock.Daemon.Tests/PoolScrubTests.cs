using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using EdgeBlock.Storage;
using EdgeBlock.Volumes;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Daemon.Tests;

/// <summary>
/// Pool scrubs through the daemon's API: a background job per pool that finishes with its counts, reports a
/// corrupted chunk with its volume and LBAs, keeps its place when cancelled and resumes from there, is resumed by the
/// daemon's next start when a stop interrupted it (not when an operator cancelled it), and refuses bad input as
/// problem+json.
/// </summary>
public sealed class PoolScrubTests : IAsyncLifetime
{
    private const int ChunkBlocks = 4; // 16 KiB chunks of 4 KiB blocks
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "ebsc-" + Guid.NewGuid().ToString("N")[..12]);
    private RunningDaemon? _daemon;
    private HttpClient? _http;
    private int? _metricsPort;

    private string Socket => Path.Combine(_directory, "api.sock");
    private string Drive => Path.Combine(_directory, "d0.img");
    private HttpClient Http => _http!;
    private RunningDaemon Daemon => _daemon!;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_directory);
        await StartDaemonAsync();
        using var pool = await PostAsync("/v1/pools", $$"""{"name": "p1", "drives": [{{JsonSerializer.Serialize(Drive + ":64M")}}]}""");
        Assert.True(pool.StatusCode == HttpStatusCode.Created, await pool.Content.ReadAsStringAsync());
    }

    public async Task DisposeAsync()
    {
        await StopDaemonAsync();
        try { Directory.Delete(_directory, recursive: true); } catch (IOException) { }
    }

    private async Task StartDaemonAsync()
    {
        _daemon = await DaemonHost.StartAsync(new DaemonOptions
        {
            DataDirectory = _directory,
            Listen = new IPEndPoint(IPAddress.Loopback, 0),
            DefaultSizeBytes = 1 << 20,
            DefaultBackend = BackendKind.Memory,
            ApiSocketPath = Socket,
            MetricsEndpoint = _metricsPort is { } port ? new IPEndPoint(IPAddress.Loopback, port) : null,
        }, configureLogging: l => l.SetMinimumLevel(LogLevel.Warning));
        _http = new HttpClient(new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var s = new System.Net.Sockets.Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await s.ConnectAsync(new UnixDomainSocketEndPoint(Socket), ct);
                return new NetworkStream(s, ownsSocket: true);
            },
        }) { BaseAddress = new Uri("http://edgeblock") };
    }

    private async Task StopDaemonAsync()
    {
        _http?.Dispose();
        if (_daemon != null) await _daemon.DisposeAsync();
        _daemon = null;
    }

    private Task<HttpResponseMessage> PostAsync(string path, string json) =>
        Http.PostAsync(path, new StringContent(json, Encoding.UTF8, "application/json"));

    private async Task<(HttpStatusCode Status, JsonElement Body)> SendAsync(HttpMethod method, string path, string? json = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (json != null) request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        using var response = await Http.SendAsync(request);
        string body = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, body.Length == 0 ? default : JsonDocument.Parse(body).RootElement.Clone());
    }

    /// <summary>A volume with checksums (or not) and <paramref name="blocks"/> blocks of random data from LBA 0; returns the data.</summary>
    private async Task<byte[]> VolumeWithDataAsync(string name, int blocks, bool checksum = true)
    {
        using var created = await PostAsync("/v1/pools/p1/volumes", JsonSerializer.Serialize(new { name, size = "16M", checksum }));
        Assert.True(created.StatusCode == HttpStatusCode.Created, await created.Content.ReadAsStringAsync());
        await using IBlockDevice device = Daemon.Daemon.Pools.Get("p1").OpenVolume(name);
        byte[] data = new byte[blocks * device.BlockSize];
        new Random(blocks * 31 + name[0]).NextBytes(data); // each volume its own data
        Assert.Equal(BlockStatus.Success, await device.WriteAsync(0, data, fua: false));
        Assert.Equal(BlockStatus.Success, await device.FlushAsync());
        return data;
    }

    private async Task<JsonElement> StartScrubAsync(string json = """{"io_share": 1}""")
    {
        var (status, body) = await SendAsync(HttpMethod.Post, "/v1/pools/p1/scrub", json);
        Assert.True(status == HttpStatusCode.Accepted, $"{(int)status} {body}");
        return body;
    }

    private async Task<JsonElement> WaitDoneAsync()
    {
        for (var deadline = DateTime.UtcNow.AddSeconds(60); DateTime.UtcNow < deadline; await Task.Delay(50))
        {
            var (status, body) = await SendAsync(HttpMethod.Get, "/v1/pools/p1/scrub");
            Assert.True(status == HttpStatusCode.OK, $"{(int)status} {body}");
            if (body.GetProperty("state").GetString() != "running") return body;
        }
        throw new TimeoutException("the scrub did not end within 60 s");
    }

    /// <summary>Holds the next scrub of p1 when it has checked <paramref name="at"/> chunks, until it is cancelled; records each run's first report.</summary>
    private sealed class Hold
    {
        public readonly ManualResetEventSlim Held = new();
        public readonly List<long> FirstReports = [];
        private long _last = -1;

        public Hold(RunningDaemon daemon, long at)
        {
            daemon.Daemon.Pools.Scrubs.ProgressHook = (pool, p, cancel) =>
            {
                lock (FirstReports)
                {
                    if (p.ChunksChecked <= _last || _last < 0) FirstReports.Add(p.ChunksChecked);
                    _last = p.ChunksChecked;
                }
                if (p.ChunksChecked != at || Held.IsSet) return;
                Held.Set();
                cancel.WaitHandle.WaitOne(TimeSpan.FromSeconds(30));
            };
        }

        public void WaitHeld() => Assert.True(Held.Wait(TimeSpan.FromSeconds(30)), "the scrub never reached the hold");
    }

    [Fact]
    public async Task Scrub_ChecksummedVolume_FinishesWithNoErrorsAndTheCounts_AndMetricsShowThem()
    {
        await StopDaemonAsync();
        _metricsPort = FreePort();
        await StartDaemonAsync();
        await VolumeWithDataAsync("a", blocks: 16 * ChunkBlocks);
        await VolumeWithDataAsync("plain", blocks: 8, checksum: false); // no checksums: not read

        JsonElement started = await StartScrubAsync();
        Assert.Equal("p1", started.GetProperty("pool").GetString());
        Assert.Contains(started.GetProperty("state").GetString(), new[] { "running", "finished" });
        Assert.Equal(16, started.GetProperty("chunks_total").GetInt64());
        JsonElement done = await WaitDoneAsync();

        Assert.Equal("finished", done.GetProperty("state").GetString());
        Assert.Equal(16, done.GetProperty("chunks_checked").GetInt64());
        Assert.Equal(16, done.GetProperty("chunks_total").GetInt64());
        Assert.Equal(16 * 16384, done.GetProperty("bytes_checked").GetInt64()); // random data is stored raw
        Assert.Equal(0, done.GetProperty("error_count").GetInt32());
        Assert.Empty(done.GetProperty("errors").EnumerateArray());
        Assert.Equal(1.0, done.GetProperty("io_share").GetDouble());
        Assert.True(done.GetProperty("duration_seconds").GetDouble() >= 0);
        Assert.True(done.TryGetProperty("ended", out _));
        using var scraper = new HttpClient();
        string metrics = await scraper.GetStringAsync($"http://127.0.0.1:{_metricsPort}/metrics");
        Assert.Contains("edgeblock_pool_scrub_chunks_checked{pool=\"p1\"} 16", metrics);
        Assert.Contains("edgeblock_pool_scrub_errors{pool=\"p1\"} 0", metrics);
        Assert.Contains("edgeblock_pool_scrub_running{pool=\"p1\"} 0", metrics);
    }

    [Fact]
    public async Task Scrub_CorruptedChunk_IsReportedWithItsVolumeAndLbaRange()
    {
        byte[] data = await VolumeWithDataAsync("a", blocks: 4 * ChunkBlocks);
        await VolumeWithDataAsync("b", blocks: 4 * ChunkBlocks);
        // Block 5 of volume a is in chunk 1 (LBAs 4-7); its bytes are stored raw somewhere in the drive's data area.
        // The daemon holds its drives locked: flip the byte while it is stopped.
        await StopDaemonAsync();
        FlipByteOf(data.AsSpan(5 * 4096, 4096));
        await StartDaemonAsync();

        await StartScrubAsync();
        JsonElement done = await WaitDoneAsync();

        Assert.Equal("finished", done.GetProperty("state").GetString());
        Assert.Equal(8, done.GetProperty("chunks_checked").GetInt64());
        Assert.Equal(1, done.GetProperty("error_count").GetInt32());
        JsonElement error = Assert.Single(done.GetProperty("errors").EnumerateArray());
        Assert.Equal("a", error.GetProperty("volume").GetString());
        Assert.Equal(4, error.GetProperty("first_lba").GetInt64());
        Assert.Equal(7, error.GetProperty("last_lba").GetInt64());
        Assert.Equal("checksum mismatch", error.GetProperty("what").GetString());
    }

    /// <summary>Finds <paramref name="block"/> in the drive file (after the 1 MiB label area) and flips a byte of it, as bit rot would.</summary>
    private void FlipByteOf(ReadOnlySpan<byte> block)
    {
        using var file = new FileStream(Drive, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
        byte[] all = new byte[file.Length];
        file.ReadExactly(all);
        int at = all.AsSpan(1 << 20).IndexOf(block);
        Assert.True(at >= 0, "the block is not in the drive file");
        long offset = (1 << 20) + at + 100;
        file.Position = offset;
        file.WriteByte((byte)(all[offset] ^ 0x40));
        file.Flush(flushToDisk: true);
    }

    [Fact]
    public async Task Scrub_Cancelled_KeepsItsPlace_AndTheNextStartResumesFromThere_WhileRestartStartsOver()
    {
        await VolumeWithDataAsync("a", blocks: 16 * ChunkBlocks);
        var hold = new Hold(Daemon, at: 5);
        JsonElement first = await StartScrubAsync();
        hold.WaitHeld();

        var (status, cancelled) = await SendAsync(HttpMethod.Delete, "/v1/pools/p1/scrub");

        Assert.True(status == HttpStatusCode.OK, $"{(int)status} {cancelled}");
        Assert.Equal("cancelled", cancelled.GetProperty("state").GetString());
        Assert.Equal(5, cancelled.GetProperty("chunks_checked").GetInt64());
        Assert.Equal("cancelled", (await WaitDoneAsync()).GetProperty("state").GetString());
        var (again, _) = await SendAsync(HttpMethod.Delete, "/v1/pools/p1/scrub");
        Assert.Equal(HttpStatusCode.Conflict, again);

        await StartScrubAsync("{}"); // resume is the default
        JsonElement resumed = await WaitDoneAsync();
        Assert.Equal("finished", resumed.GetProperty("state").GetString());
        Assert.Equal(16, resumed.GetProperty("chunks_checked").GetInt64()); // each chunk once
        Assert.Equal(first.GetProperty("started").GetDateTimeOffset(), resumed.GetProperty("started").GetDateTimeOffset());

        await StartScrubAsync("""{"resume": false, "io_share": 1}""");
        JsonElement restarted = await WaitDoneAsync();
        Assert.Equal(16, restarted.GetProperty("chunks_checked").GetInt64());
        Assert.NotEqual(first.GetProperty("started").GetDateTimeOffset(), restarted.GetProperty("started").GetDateTimeOffset());
        lock (hold.FirstReports) Assert.Equal([0L, 5L, 0L], hold.FirstReports); // the resumed run began at chunk 5
    }

    [Fact]
    public async Task Scrub_RunningWhenTheDaemonStops_IsResumedByItsNextStart()
    {
        await VolumeWithDataAsync("a", blocks: 16 * ChunkBlocks);
        var hold = new Hold(Daemon, at: 5);
        JsonElement first = await StartScrubAsync();
        hold.WaitHeld();

        await StopDaemonAsync();
        await StartDaemonAsync();

        JsonElement resumed = await WaitDoneAsync();
        Assert.Equal("finished", resumed.GetProperty("state").GetString());
        Assert.Equal(16, resumed.GetProperty("chunks_checked").GetInt64());
        Assert.Equal(first.GetProperty("started").GetDateTimeOffset(), resumed.GetProperty("started").GetDateTimeOffset());
        Assert.Equal(0.25, resumed.GetProperty("io_share").GetDouble()); // the default share
    }

    [Fact]
    public async Task Scrub_CancelledByAnOperator_IsNotResumedByTheNextStart()
    {
        await VolumeWithDataAsync("a", blocks: 16 * ChunkBlocks);
        var hold = new Hold(Daemon, at: 5);
        await StartScrubAsync();
        hold.WaitHeld();
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(HttpMethod.Delete, "/v1/pools/p1/scrub")).Status);

        await StopDaemonAsync();
        await StartDaemonAsync();

        var (status, body) = await SendAsync(HttpMethod.Get, "/v1/pools/p1/scrub");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("cancelled", body.GetProperty("state").GetString());
        Assert.Equal(5, body.GetProperty("chunks_checked").GetInt64());
        Assert.False(Daemon.Daemon.Pools.Get("p1").ScrubRunning);
    }

    [Fact]
    public async Task Scrub_StartWhileOneRuns_Is409NamingIt()
    {
        await VolumeWithDataAsync("a", blocks: 16 * ChunkBlocks);
        var hold = new Hold(Daemon, at: 5);
        await StartScrubAsync();
        hold.WaitHeld();

        var (status, body) = await SendAsync(HttpMethod.Post, "/v1/pools/p1/scrub", "{}");

        Assert.Equal(HttpStatusCode.Conflict, status);
        Assert.Contains("already running", body.GetProperty("detail").GetString());
        Assert.Equal("running", (await SendAsync(HttpMethod.Get, "/v1/pools/p1/scrub")).Body.GetProperty("state").GetString());
    }

    [Theory]
    [InlineData("""{"io_share": 0}""", "io_share 0")]
    [InlineData("""{"io_share": -0.5}""", "io_share -0.5")]
    [InlineData("""{"io_share": 1.5}""", "io_share 1.5")]
    [InlineData("""{"io_share": "half"}""", "")]
    [InlineData("""{"resume": "yes"}""", "")]
    [InlineData("""{"iops": 100}""", "")]
    [InlineData("""[1]""", "")]
    public async Task Scrub_BadRequest_Is400Problem_AndStartsNothing(string json, string named)
    {
        await VolumeWithDataAsync("a", blocks: ChunkBlocks);

        var (status, body) = await SendAsync(HttpMethod.Post, "/v1/pools/p1/scrub", json);

        Assert.True(status == HttpStatusCode.BadRequest, $"{(int)status} {body}");
        Assert.Equal(400, body.GetProperty("status").GetInt32());
        Assert.Contains(named, body.GetProperty("detail").GetString());
        Assert.Equal(HttpStatusCode.NotFound, (await SendAsync(HttpMethod.Get, "/v1/pools/p1/scrub")).Status);
    }

    [Fact]
    public async Task Scrub_NoBody_StartsWithTheDefaults()
    {
        await VolumeWithDataAsync("a", blocks: ChunkBlocks);

        using var response = await Http.PostAsync("/v1/pools/p1/scrub", content: null);

        Assert.True(response.StatusCode == HttpStatusCode.Accepted, await response.Content.ReadAsStringAsync());
        JsonElement done = await WaitDoneAsync();
        Assert.Equal(0.25, done.GetProperty("io_share").GetDouble());
        Assert.Equal(1, done.GetProperty("chunks_checked").GetInt64());
    }

    [Theory]
    [InlineData("POST")]
    [InlineData("GET")]
    [InlineData("DELETE")]
    public async Task Scrub_UnknownPool_Is404Problem(string method)
    {
        var (status, body) = await SendAsync(new HttpMethod(method), "/v1/pools/nope/scrub", method == "POST" ? "{}" : null);

        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Contains("no pool nope", body.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Scrub_StatusWhenNoneRan_Is404_AndCancelWhenNoneRuns_Is409()
    {
        var (status, body) = await SendAsync(HttpMethod.Get, "/v1/pools/p1/scrub");
        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Contains("no scrub has run", body.GetProperty("detail").GetString());

        (status, body) = await SendAsync(HttpMethod.Delete, "/v1/pools/p1/scrub");
        Assert.Equal(HttpStatusCode.Conflict, status);
        Assert.Contains("no scrub is running", body.GetProperty("detail").GetString());
    }

    private static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }
}
