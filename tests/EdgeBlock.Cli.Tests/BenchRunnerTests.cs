using System.Net;
using EdgeBlock.Api;
using EdgeBlock.Daemon;
using EdgeBlock.Nvme.Auth;
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

    /// <summary>
    /// A host the subsystem knows with a DH-HMAC-CHAP secret: the bench, given the secrets in files, authenticates
    /// every queue (both ways) and runs; without the secret its Connect is answered but its first command is refused.
    /// </summary>
    [Fact]
    public async Task DhchapSecrets_FromFiles_AuthenticateEveryQueue_WithoutThemTheBenchCannotRun()
    {
        int port = await StartAsync(BackendKind.Memory);
        const string Host = "nqn.2014-08.org.nvmexpress:uuid:5a0c1b0e-1d7f-4c55-9d77-62b1d1f2b3a4";
        DhchapKey secret = DhchapKey.Generate(), ctrlSecret = DhchapKey.Generate();
        await _daemon!.Management.AddHostAsync(DaemonOptions.DefaultSubsystemNqn,
            new AddHostRequest(Host, new SetHostAuthRequest(secret.Format(), ctrlSecret.Format())));
        string secretFile = Path.Combine(_dir, "host.key"), ctrlFile = Path.Combine(_dir, "ctrl.key");
        await File.WriteAllTextAsync(secretFile, secret.Format() + "\n");
        await File.WriteAllTextAsync(ctrlFile, ctrlSecret.Format() + "\n");
        var errors = new List<string>();
        var options = Options(port, BenchPattern.RandRw, 4096, 8, queues: 2, verify: true) with
        {
            HostNqn = Host,
            DhchapSecret = BenchOptions.ReadDhchapSecret("--dhchap-secret-file", secretFile, errors),
            DhchapControllerSecret = BenchOptions.ReadDhchapSecret("--dhchap-ctrl-secret-file", ctrlFile, errors),
        };
        Assert.Empty(errors);

        var r = await new BenchRunner(options, progress: null).RunAsync(CancellationToken.None);
        Assert.True(r.Ok, $"errors {r.ErrorCount}, transport {r.TransportError}");
        Assert.Equal(0, r.Verify!.Mismatches);

        await Assert.ThrowsAnyAsync<Exception>(() => new BenchRunner(options with { DhchapSecret = null, DhchapControllerSecret = null }, progress: null)
            .RunAsync(CancellationToken.None));
    }

    [Fact]
    public void ReadDhchapSecret_BadFileOrFormat_NamesTheOptionAndFile_NotTheContent()
    {
        Directory.CreateDirectory(_dir);
        string bad = Path.Combine(_dir, "bad.key");
        File.WriteAllText(bad, "DHHC-1:00:bm90IGEga2V5:");
        var errors = new List<string>();

        Assert.Null(BenchOptions.ReadDhchapSecret("--dhchap-secret-file", bad, errors));
        Assert.Null(BenchOptions.ReadDhchapSecret("--dhchap-ctrl-secret-file", Path.Combine(_dir, "missing.key"), errors));

        Assert.Equal(2, errors.Count);
        Assert.StartsWith($"--dhchap-secret-file {bad}: ", errors[0]);
        Assert.DoesNotContain("bm90IGEga2V5", errors[0]);
        Assert.StartsWith("--dhchap-ctrl-secret-file ", errors[1]);
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
    public async Task RateIops_QdOneOverTheNullBackend_StaysAtTheRate()
    {
        int port = await StartAsync(BackendKind.Null);

        // Unpaced, QD1 over loopback runs thousands of reads a second; paced at 100 it must not pass 100
        // (the timer may run late on a loaded box, so only the upper bound is tight).
        var r = await new BenchRunner(Options(port, BenchPattern.RandRead, 4096, 1) with { RateIops = 100, Duration = TimeSpan.FromSeconds(1) },
            progress: null).RunAsync(CancellationToken.None);

        Assert.True(r.Ok);
        Assert.InRange(r.Iops, 30, 105);
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

    [Fact]
    public async Task Idle_HoldsEachControllerWithItsQueuesForTheTime_ThenReleasesThem()
    {
        int port = await StartAsync(BackendKind.Null);
        var options = Options(port, BenchPattern.RandRead, 4096, 8, queues: 2) with { Idle = true, Controllers = 3, Duration = TimeSpan.FromSeconds(30) };
        using var stop = new CancellationTokenSource();
        var holding = BenchIdle.RunAsync(options, TextWriter.Null, stop.Token);

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        IReadOnlyList<HostInfo> hosts;
        // A controller shows up with its admin queue; its I/O queues connect right after.
        while (((hosts = _daemon!.Management.Hosts()).Count < 3 || hosts.Any(h => h.Queues < 3)) && DateTime.UtcNow < deadline && !holding.IsCompleted)
            await Task.Delay(20);
        Assert.Equal(3, hosts.Count);
        Assert.Equal(3, hosts.Select(h => h.HostNqn).Distinct().Count()); // each controller its own host, as one VM each
        Assert.All(hosts, h => Assert.Equal(3, h.Queues));                  // the admin queue and --queues 2
        Assert.False(holding.IsCompleted);                                  // held: no I/O ends it before --time

        stop.Cancel(); // as Ctrl-C: released like at the end of --time
        Assert.Equal(0, await holding);
        while (_daemon.Management.Hosts().Count > 0 && DateTime.UtcNow < deadline) await Task.Delay(20);
        Assert.Empty(_daemon.Management.Hosts());
    }
}
