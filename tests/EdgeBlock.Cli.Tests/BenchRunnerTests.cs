using System.Net;
using EdgeBlock.Daemon;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeBlock.Cli.Tests;

/// <summary>The whole bench path against an in-process daemon: connect, fill, workload, read-back, figures.</summary>
public sealed class BenchRunnerTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "edgeblock-bench-" + Guid.NewGuid().ToString("N"));
    private EdgeBlockDaemon? _daemon;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_daemon != null)
        {
            await _daemon.StopAsync(CancellationToken.None);
            await _daemon.DisposeAsync();
        }
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private async Task<int> StartAsync(BackendKind backend)
    {
        _daemon = new EdgeBlockDaemon(new DaemonOptions
        {
            DataDirectory = _dir,
            Listen = new IPEndPoint(IPAddress.Loopback, 0),
            DefaultSizeBytes = 64 << 20,
            DefaultBackend = backend,
            ApiSocketPath = Path.Combine(_dir, "api.sock"),
        }, NullLoggerFactory.Instance);
        await _daemon.StartAsync(CancellationToken.None);
        return _daemon.ListenEndPoint!.Port;
    }

    private static BenchOptions Options(int port, BenchPattern pattern, int bs, int qd, int queues = 1, bool verify = false, bool digests = false) => new()
    {
        Host = "127.0.0.1",
        Port = port,
        SubsystemNqn = DaemonOptions.DefaultSubsystemNqn,
        Pattern = pattern,
        BlockSize = bs,
        QueueDepth = qd,
        Queues = queues,
        Duration = TimeSpan.FromMilliseconds(400),
        Verify = verify,
        SizeLimit = 8 << 20,
        HeaderDigest = digests,
        DataDigest = digests,
        ServerPid = Environment.ProcessId,
        Seed = 7,
    };

    [Theory]
    [InlineData(4096, 32, 1, false)]
    [InlineData(128 * 1024, 8, 2, false)] // C2HData payloads received straight into the slot buffers, R2T writes
    [InlineData(128 * 1024, 4, 1, true)]  // the same with header and data digests
    public async Task Verify_OverAMemoryNamespace_FindsEveryBlockIntact(int bs, int qd, int queues, bool digests)
    {
        int port = await StartAsync(BackendKind.Memory);

        var r = await new BenchRunner(Options(port, BenchPattern.RandRw, bs, qd, queues, verify: true, digests), progress: null).RunAsync(CancellationToken.None);

        Assert.True(r.Ok, $"errors {r.ErrorCount}, transport {r.TransportError}, mismatches {r.Verify?.Mismatches}: {string.Join("; ", r.Verify?.FirstMismatches ?? [])}");
        Assert.NotNull(r.Verify);
        Assert.Equal(0, r.Verify.Mismatches);
        Assert.True(r.Verify.BlocksChecked >= (8 << 20) / r.LbaSize, $"{r.Verify.BlocksChecked} blocks checked");
        Assert.True(r.Ios > 0 && r.Read != null && r.Write != null);
        Assert.Equal(r.Ios, r.LatencyUs.Count);
        Assert.True(r.LatencyUs.P50 > 0 && r.LatencyUs.P50 <= r.LatencyUs.P99 && r.LatencyUs.P99 <= r.LatencyUs.Max);
        Assert.NotNull(r.ServerCpu);
    }

    [Fact]
    public async Task Verify_OverTheNullBackend_ReportsMismatchesWithTheirLba()
    {
        int port = await StartAsync(BackendKind.Null);

        var r = await new BenchRunner(Options(port, BenchPattern.Write, 4096, 8, verify: true), progress: null).RunAsync(CancellationToken.None);

        Assert.False(r.Ok);
        Assert.NotNull(r.Verify);
        Assert.Equal(r.Verify.BlocksChecked, r.Verify.Mismatches);
        Assert.Equal(BenchWorker.MaxMismatchDetails, r.Verify.FirstMismatches.Count);
        Assert.All(r.Verify.FirstMismatches, m => Assert.Matches(@"^LBA \d+: no verify header", m));
    }

    [Fact]
    public async Task SequentialReads_CountEveryIoInTheWindow_AndReportJson()
    {
        int port = await StartAsync(BackendKind.Null);

        var r = await new BenchRunner(Options(port, BenchPattern.Read, 128 * 1024, 8), progress: null).RunAsync(CancellationToken.None);

        Assert.True(r.Ok);
        Assert.Equal(r.Ios * 128 * 1024, r.Bytes);
        Assert.Equal(r.Ios / r.Seconds, r.Iops, tolerance: 0.001);
        Assert.Null(r.Write);
        string json = BenchReport.ToJson(r);
        Assert.Contains("\"mb_per_sec\":", json);
        Assert.Contains("\"latency_us\":{", json);
        Assert.Contains("\"server_cpu\":{", json);
        Assert.Contains("bandwidth", BenchReport.ToText(r));
    }

    [Fact]
    public async Task CompressibleWrites_AreReported_WithTheIosOfTheWholeRun()
    {
        int port = await StartAsync(BackendKind.Memory);

        var r = await new BenchRunner(Options(port, BenchPattern.RandWrite, 4096, 8) with { Compressible = 2, Ramp = TimeSpan.FromMilliseconds(200) },
            progress: null).RunAsync(CancellationToken.None);

        Assert.True(r.Ok);
        Assert.True(r.RunIos > r.Ios, $"{r.RunIos} I/Os in the run, {r.Ios} in the window after a ramp");
        string json = BenchReport.ToJson(r);
        Assert.Contains("\"compressible\":2", json);
        Assert.Contains("\"run_ios\":", json);
    }
}
