using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using EdgeBlock.Storage;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Daemon.Tests;

/// <summary>
/// Compression and checksums of volumes through the daemon: chosen in the create request, answered back by the
/// API, a bad value refused as problem+json naming it (whatever a hostile client sends), the space figures in
/// pool and volume answers, and the per-volume metrics.
/// </summary>
public sealed class VolumeDataServicesTests
{
    /// <summary>A daemon with its API on a Unix socket in a temp directory, a pool p1 over one file, and an HTTP client to the API.</summary>
    private sealed class Api : IAsyncDisposable
    {
        private readonly RunningDaemon _daemon;

        private Api(RunningDaemon daemon, string directory, HttpClient http)
        {
            _daemon = daemon;
            Directory = directory;
            Http = http;
        }

        public string Directory { get; }
        public HttpClient Http { get; }

        public static async Task<Api> StartAsync(int? metricsPort = null)
        {
            // Short path: a Unix socket path is limited to 107 bytes.
            string dir = Path.Combine(Path.GetTempPath(), "ebds-" + Guid.NewGuid().ToString("N")[..12]);
            System.IO.Directory.CreateDirectory(dir);
            string socket = Path.Combine(dir, "api.sock");
            var daemon = await DaemonHost.StartAsync(new DaemonOptions
            {
                DataDirectory = dir,
                Listen = new IPEndPoint(IPAddress.Loopback, 0),
                DefaultSizeBytes = 1 << 20,
                DefaultBackend = BackendKind.Memory,
                ApiSocketPath = socket,
                MetricsEndpoint = metricsPort is { } port ? new IPEndPoint(IPAddress.Loopback, port) : null,
            }, configureLogging: l => l.SetMinimumLevel(LogLevel.Warning));
            var http = new HttpClient(new SocketsHttpHandler
            {
                ConnectCallback = async (_, ct) =>
                {
                    var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                    await s.ConnectAsync(new UnixDomainSocketEndPoint(socket), ct);
                    return new NetworkStream(s, ownsSocket: true);
                },
            }) { BaseAddress = new Uri("http://edgeblock") };
            var api = new Api(daemon, dir, http);
            var pool = await api.PostAsync("/v1/pools", $$"""{"name": "p1", "drives": [{{JsonSerializer.Serialize(Path.Combine(dir, "d0.img") + ":64M")}}]}""");
            Assert.True(pool.StatusCode == HttpStatusCode.Created, await pool.Content.ReadAsStringAsync());
            return api;
        }

        public Task<HttpResponseMessage> PostAsync(string path, string json) =>
            Http.PostAsync(path, new StringContent(json, Encoding.UTF8, "application/json"));

        public async Task<JsonElement> GetAsync(string path)
        {
            using var response = await Http.GetAsync(path);
            string body = await response.Content.ReadAsStringAsync();
            Assert.True(response.IsSuccessStatusCode, $"GET {path}: {(int)response.StatusCode} {body}");
            return JsonDocument.Parse(body).RootElement;
        }

        /// <summary>Writes blocks into a volume the way a namespace would (the API has no data path).</summary>
        public async Task WriteAsync(string pool, string volume, long lba, int blocks)
        {
            await using IBlockDevice device = _daemon.Daemon.Pools.Get(pool).OpenVolume(volume);
            byte[] data = new byte[blocks * device.BlockSize];
            new Random(7).NextBytes(data);
            Assert.Equal(BlockStatus.Success, await device.WriteAsync(lba, data, fua: false));
            Assert.Equal(BlockStatus.Success, await device.FlushAsync());
        }

        public async ValueTask DisposeAsync()
        {
            Http.Dispose();
            await _daemon.DisposeAsync();
            try { System.IO.Directory.Delete(Directory, recursive: true); } catch (IOException) { }
        }
    }

    [Fact]
    public async Task CreateVolume_Lz4AndChecksum_AreAnsweredBackByShowAndList()
    {
        await using var api = await Api.StartAsync();

        using var created = await api.PostAsync("/v1/pools/p1/volumes", """{"name": "a", "size": "16M", "compress": "lz4", "checksum": true}""");
        string body = await created.Content.ReadAsStringAsync();
        Assert.True(created.StatusCode == HttpStatusCode.Created, body);
        Assert.Equal("lz4", JsonDocument.Parse(body).RootElement.GetProperty("compression").GetString());

        JsonElement shown = await api.GetAsync("/v1/pools/p1/volumes/a");
        Assert.Equal("lz4", shown.GetProperty("compression").GetString());
        Assert.True(shown.GetProperty("checksum").GetBoolean());
        Assert.Equal(0, shown.GetProperty("logical_bytes").GetInt64());
        Assert.Equal(0, shown.GetProperty("physical_bytes").GetInt64());
        Assert.Equal(1.0, shown.GetProperty("compression_ratio").GetDouble());
        Assert.Equal(0, shown.GetProperty("checksum_errors").GetInt64());
        JsonElement listed = Assert.Single((await api.GetAsync("/v1/volumes")).EnumerateArray());
        Assert.Equal("lz4", listed.GetProperty("compression").GetString());
        Assert.True(listed.GetProperty("checksum").GetBoolean());
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task CreateVolume_EncryptedWithAKeyFile_IsAnsweredBack_AndUnsafeOrMissingKeysAre400NamingTheProblem()
    {
        await using var api = await Api.StartAsync();
        string key = Path.Combine(api.Directory, "a.key");
        File.WriteAllBytes(key, System.Security.Cryptography.RandomNumberGenerator.GetBytes(64));
        File.SetUnixFileMode(key, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead);
        async Task Refused(object request, string why)
        {
            using var response = await api.PostAsync("/v1/pools/p1/volumes", JsonSerializer.Serialize(request));
            string body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, body);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            Assert.Contains(why, body);
        }

        await Refused(new { name = "a", size = "16M", encrypt = true }, "--key-file PATH");
        await Refused(new { name = "a", size = "16M", encrypt = true, key_file = key }, "mode 0604");
        await Refused(new { name = "a", size = "16M", encrypt = true, key_file = key, key_command = "cat " + key }, "not both");
        await Refused(new { name = "a", size = "16M", encrypt = true, key_file = key + "\n" }, "control character U+000A");
        await Refused(new { name = "a", size = "16M", key_file = key }, "add --encrypt");
        Assert.Empty((await api.GetAsync("/v1/volumes")).EnumerateArray());

        File.SetUnixFileMode(key, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        using var created = await api.PostAsync("/v1/pools/p1/volumes", JsonSerializer.Serialize(new { name = "a", size = "16M", checksum = true, encrypt = true, key_file = key }));
        Assert.True(created.StatusCode == HttpStatusCode.Created, await created.Content.ReadAsStringAsync());
        JsonElement shown = await api.GetAsync("/v1/pools/p1/volumes/a");
        Assert.True(shown.GetProperty("encrypted").GetBoolean());
        await api.WriteAsync("p1", "a", 0, 8);
        // 8 blocks of random data: two 16 KiB chunks, stored raw (encrypted, same size).
        Assert.Equal(2 * 16384, (await api.GetAsync("/v1/pools/p1/volumes/a")).GetProperty("physical_bytes").GetInt64());
    }

    [Theory]
    [InlineData("zstd:7", "zstd:7", true)]
    [InlineData("ZSTD", "zstd:3", false)]
    [InlineData(null, "off", false)]
    [InlineData("off", "off", true)]
    public async Task CreateVolume_CompressSpellings_AreStoredInTheirCanonicalForm(string? compress, string expected, bool checksum)
    {
        await using var api = await Api.StartAsync();
        string json = JsonSerializer.Serialize(new { name = "a", size = "16M", compress, checksum });

        using var created = await api.PostAsync("/v1/pools/p1/volumes", json);

        Assert.True(created.StatusCode == HttpStatusCode.Created, await created.Content.ReadAsStringAsync());
        JsonElement shown = await api.GetAsync("/v1/pools/p1/volumes/a");
        Assert.Equal(expected, shown.GetProperty("compression").GetString());
        Assert.Equal(checksum, shown.GetProperty("checksum").GetBoolean());
    }

    [Theory]
    [InlineData("zstd:99", "compress 'zstd:99'", "from 1 to 19")]
    [InlineData("gzip", "compress 'gzip'", "use off, lz4 or zstd[:LEVEL]")]
    [InlineData("zstd:", "compress 'zstd:'", "from 1 to 19")]
    [InlineData("lz4\u001b[2J", @"compress 'lz4\u001B[2J'", "control character U+001B")] // a terminal escape: refused, and shown escaped
    [InlineData("lz4\n", @"compress 'lz4\u000A'", "control character U+000A")]
    public async Task CreateVolume_BadCompress_Is400ProblemNamingFieldAndValue_AndCreatesNothing(string compress, string shownValue, string why)
    {
        await using var api = await Api.StartAsync();
        string json = JsonSerializer.Serialize(new { name = "a", size = "16M", compress });

        using var refused = await api.PostAsync("/v1/pools/p1/volumes", json);

        string detail = await AssertProblemAsync(refused, HttpStatusCode.BadRequest);
        Assert.StartsWith($"volume p1/a: {shownValue}", detail);
        Assert.Contains(why, detail);
        Assert.DoesNotContain('\u001b', detail);
        Assert.Empty((await api.GetAsync("/v1/pools/p1/volumes")).EnumerateArray());
    }

    [Fact]
    public async Task CreateVolume_HugeCompress_Is400WithTheValueCut_AndCreatesNothing()
    {
        await using var api = await Api.StartAsync();
        string compress = "zstd:" + new string('9', 1 << 20);
        string json = JsonSerializer.Serialize(new { name = "a", size = "16M", compress });

        using var refused = await api.PostAsync("/v1/pools/p1/volumes", json);

        string detail = await AssertProblemAsync(refused, HttpStatusCode.BadRequest);
        Assert.Contains("compress 'zstd:999", detail);
        Assert.Contains($"({compress.Length} characters)", detail);
        Assert.True(detail.Length < 300, detail);
        Assert.Empty((await api.GetAsync("/v1/pools/p1/volumes")).EnumerateArray());
    }

    [Theory]
    [InlineData("""{"name": "a", "size": "16M", "compress": 4}""", """{"name": "a", "size": "16M", "compress": "lz4"}""")]
    [InlineData("""{"name": "a", "size": "16M", "compress": ["lz4"]}""", """{"name": "a", "size": "16M", "compress": "lz4"}""")]
    [InlineData("""{"name": "a", "size": "16M", "checksum": "on"}""", """{"name": "a", "size": "16M", "checksum": true}""")]
    [InlineData("""{"name": "a", "size": "16M", "checksum": null}""", """{"name": "a", "size": "16M", "checksum": false}""")]
    [InlineData("""{"name": "a", "size": "16M", "compression": "lz4"}""", """{"name": "a", "size": "16M", "compress": "lz4"}""")] // the answer's field, not the request's
    [InlineData("null", """{"name": "a", "size": "16M", "compress": "zstd", "checksum": true}""")]
    public async Task CreateVolume_MistypedDataServiceField_Is400Problem_NotA500_WhileTheWellTypedFieldIsAccepted(string bad, string good)
    {
        await using var api = await Api.StartAsync();

        using var refused = await api.PostAsync("/v1/pools/p1/volumes", bad);

        await AssertProblemAsync(refused, HttpStatusCode.BadRequest);
        Assert.Empty((await api.GetAsync("/v1/pools/p1/volumes")).EnumerateArray());
        using var accepted = await api.PostAsync("/v1/pools/p1/volumes", good);
        Assert.True(accepted.StatusCode == HttpStatusCode.Created, await accepted.Content.ReadAsStringAsync());
    }

    /// <summary>Numbers are JSON numbers: ASP.NET's defaults would read "7" as 7 (issue I).</summary>
    [Fact]
    public async Task AddNamespace_NsidAsAString_Is400Problem_WhileTheNumberIsAccepted()
    {
        await using var api = await Api.StartAsync();
        using var volume = await api.PostAsync("/v1/pools/p1/volumes", """{"name": "a", "size": "16M", "checksum": true}""");
        Assert.Equal(HttpStatusCode.Created, volume.StatusCode);
        string path = $"/v1/subsystems/{Uri.EscapeDataString(DaemonOptions.DefaultSubsystemNqn)}/namespaces";

        using var refused = await api.PostAsync(path, """{"backend": "volume:p1/a", "nsid": "7"}""");
        await AssertProblemAsync(refused, HttpStatusCode.BadRequest);
        using var accepted = await api.PostAsync(path, """{"backend": "volume:p1/a", "nsid": 7}""");
        Assert.True(accepted.StatusCode == HttpStatusCode.Created, await accepted.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task PoolAndVolumeShow_AfterWritesAndASnapshot_AnswerLogicalPhysicalAndRatio_SharedSpaceOnce()
    {
        await using var api = await Api.StartAsync();
        using var created = await api.PostAsync("/v1/pools/p1/volumes", """{"name": "a", "size": "16M"}""");
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        JsonElement before = await api.GetAsync("/v1/pools/p1");
        Assert.Equal(0, before.GetProperty("logical_bytes").GetInt64());
        Assert.Equal(0, before.GetProperty("physical_bytes").GetInt64());
        Assert.Equal(1.0, before.GetProperty("compression_ratio").GetDouble());
        Assert.Equal(0, before.GetProperty("counters").GetProperty("checksum_errors").GetInt64());

        await api.WriteAsync("p1", "a", lba: 8, blocks: 2);
        using var snap = await api.PostAsync("/v1/pools/p1/volumes/a/snapshots", """{"name": "s1"}""");
        Assert.Equal(HttpStatusCode.Created, snap.StatusCode);

        const long extent = 1 << 20, written = 2 * 4096;
        JsonElement volume = await api.GetAsync("/v1/pools/p1/volumes/a");
        Assert.Equal(written, volume.GetProperty("logical_bytes").GetInt64());
        Assert.Equal(extent, volume.GetProperty("physical_bytes").GetInt64());
        Assert.Equal(0.01, volume.GetProperty("compression_ratio").GetDouble()); // 8 KiB in a 1 MiB extent, 2 decimals
        JsonElement pool = await api.GetAsync("/v1/pools/p1");
        Assert.Equal(written, pool.GetProperty("logical_bytes").GetInt64());
        Assert.Equal(extent, pool.GetProperty("physical_bytes").GetInt64());
        Assert.Equal(pool.GetProperty("allocated_bytes").GetInt64(), pool.GetProperty("physical_bytes").GetInt64());
        Assert.Equal(0.01, pool.GetProperty("compression_ratio").GetDouble());
    }

    [Fact]
    public async Task VolumeShowAndMetrics_100TiBThinVolumeInA64MiBPool_MapBytesSmallUntilWritten_ThenGrow()
    {
        int port = FreePort();
        await using var api = await Api.StartAsync(metricsPort: port);
        using var created = await api.PostAsync("/v1/pools/p1/volumes", """{"name": "big", "size": "100T"}""");
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        long empty = (await api.GetAsync("/v1/pools/p1/volumes/big")).GetProperty("map_bytes").GetInt64();
        using var scraper = new HttpClient();
        string text = await scraper.GetStringAsync($"http://127.0.0.1:{port}/metrics");

        await api.WriteAsync("p1", "big", lba: 0, blocks: 1);
        long written = (await api.GetAsync("/v1/pools/p1/volumes/big")).GetProperty("map_bytes").GetInt64();

        Assert.InRange(empty, 1, 64 << 10); // the root page of its map, not a slot per 1 MiB of 100 TiB (800 MiB)
        Assert.Contains($"edgeblock_volume_map_bytes{{pool=\"p1\",volume=\"big\"}} {empty}", text);
        Assert.InRange(written, empty + 1, empty + (64 << 10)); // one extent's entry and the pages that lead to it
    }

    [Fact]
    public async Task MetricsEndpoint_Volume_ExposesLogicalPhysicalAndChecksumErrorSeries_UntilDeleted()
    {
        int port = FreePort();
        await using var api = await Api.StartAsync(metricsPort: port);
        using var created = await api.PostAsync("/v1/pools/p1/volumes", """{"name": "a", "size": "16M", "compress": "zstd:5", "checksum": true}""");
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        using var other = await api.PostAsync("/v1/pools/p1/volumes", """{"name": "b", "size": "16M"}""");
        Assert.Equal(HttpStatusCode.Created, other.StatusCode);
        await api.WriteAsync("p1", "b", lba: 0, blocks: 3);
        using var scraper = new HttpClient();

        string text = await scraper.GetStringAsync($"http://127.0.0.1:{port}/metrics");

        Assert.Contains("edgeblock_volume_logical_bytes{pool=\"p1\",volume=\"a\"} 0", text);
        Assert.Contains("edgeblock_volume_physical_bytes{pool=\"p1\",volume=\"a\"} 0", text);
        Assert.Contains("edgeblock_volume_checksum_errors_total{pool=\"p1\",volume=\"a\"} 0", text);
        Assert.Contains("edgeblock_volume_logical_bytes{pool=\"p1\",volume=\"b\"} 12288", text);
        Assert.Contains("edgeblock_volume_physical_bytes{pool=\"p1\",volume=\"b\"} 1048576", text);
        Assert.Contains("# TYPE edgeblock_volume_checksum_errors_total counter", text);

        using var deleted = await api.Http.DeleteAsync("/v1/pools/p1/volumes/a");
        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        text = await scraper.GetStringAsync($"http://127.0.0.1:{port}/metrics");
        Assert.DoesNotContain("volume=\"a\"", text);
        Assert.Contains("edgeblock_volume_logical_bytes{pool=\"p1\",volume=\"b\"} 12288", text);
    }

    [Fact]
    public async Task MetricsAndVolumeShow_AttachedImage_ReportTheCopyUntilTheVolumeIsDeleted()
    {
        int port = FreePort();
        await using var api = await Api.StartAsync(metricsPort: port);
        string image = Path.Combine(api.Directory, "disk.raw");
        File.WriteAllBytes(image, Enumerable.Range(0, 2 << 20).Select(i => (byte)(i * 7 + 1)).ToArray());
        // A tiny share: the copy moves its first 1 MiB, then waits ~1000 times as long as that took.
        using var attached = await api.PostAsync("/v1/pools/p1/images/attach",
            $$"""{"file": {{JsonSerializer.Serialize(image)}}, "name": "vm", "io_share": 0.001}""");
        Assert.True(attached.StatusCode == HttpStatusCode.Created, await attached.Content.ReadAsStringAsync());
        JsonElement copy = (await api.GetAsync("/v1/pools/p1/volumes/vm")).GetProperty("origin_copy");
        Assert.Equal(image, copy.GetProperty("file").GetString());
        Assert.Equal(2 << 20, copy.GetProperty("bytes_total").GetInt64());
        using var scraper = new HttpClient();

        string text = await scraper.GetStringAsync($"http://127.0.0.1:{port}/metrics");

        Assert.Contains("edgeblock_volume_origin_bytes{pool=\"p1\",volume=\"vm\"} 2097152", text);
        Assert.Contains("edgeblock_volume_origin_copied_bytes{pool=\"p1\",volume=\"vm\"}", text);
        Assert.Contains((await api.GetAsync("/v1/image-jobs")).EnumerateArray(), j => j.GetProperty("kind").GetString() == "attach" && j.GetProperty("state").GetString() == "running");
        using var deleted = await api.Http.DeleteAsync("/v1/pools/p1/volumes/vm"); // stops the copy first
        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        text = await scraper.GetStringAsync($"http://127.0.0.1:{port}/metrics");
        Assert.DoesNotContain("volume=\"vm\"", text);
    }

    private static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    /// <summary>The refusal's status, media type and problem fields; returns its detail.</summary>
    private static async Task<string> AssertProblemAsync(HttpResponseMessage response, HttpStatusCode status)
    {
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"{(int)response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        JsonElement problem = JsonDocument.Parse(body).RootElement;
        Assert.Equal((int)status, problem.GetProperty("status").GetInt32());
        return problem.GetProperty("detail").GetString() ?? "";
    }
}
