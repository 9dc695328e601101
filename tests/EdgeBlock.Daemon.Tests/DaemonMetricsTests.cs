using System.Net;
using System.Net.Sockets;
using EdgeBlock.Storage;
using EdgeBlock.Target;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Daemon.Tests;

public class DaemonMetricsTests
{
    private static (NvmeTarget Target, Namespace Ns) TargetWithNamespace()
    {
        var target = new NvmeTarget();
        var subsystem = new Subsystem("nqn.2026-11.io.edgeblock:metrics");
        var ns = new Namespace(1, new NullBlockDevice(1 << 20), Guid.NewGuid());
        subsystem.AddNamespace(ns);
        target.AddSubsystem(subsystem);
        return (target, ns);
    }

    [Fact]
    public async Task Scrape_ReportsNamespaceCountersAndProcessCpu()
    {
        var (target, ns) = TargetWithNamespace();
        Interlocked.Add(ref ns.Counters.ReadCommands, 5);
        Interlocked.Add(ref ns.Counters.BytesWritten, 8192);
        var metrics = new DaemonMetrics(target);
        string text = await metrics.ScrapeAsync();
        Assert.Contains("edgeblock_namespace_ops_total{subsystem=\"nqn.2026-11.io.edgeblock:metrics\",nsid=\"1\",op=\"read\"} 5", text);
        Assert.Contains("edgeblock_namespace_bytes_total{subsystem=\"nqn.2026-11.io.edgeblock:metrics\",nsid=\"1\",op=\"write\"} 8192", text);
        Assert.Contains("process_cpu_seconds_total", text);
    }

    [Fact]
    public async Task Scrape_ReportsTheMemoryBudget_InUseAndWaits()
    {
        var (target, _) = TargetWithNamespace();
        using var buffers = new DataBufferPool(1 << 20, 128 * 1024);
        Assert.True(buffers.TryRent(65536, 0, out var buffer));
        buffers.AddWaiter(new NoWaiter());
        var metrics = new DaemonMetrics(target, buffers: buffers);
        string text = await metrics.ScrapeAsync();
        Assert.Contains("edgeblock_memory_budget_bytes 1048576", text);
        Assert.Contains("edgeblock_memory_in_use_bytes 65536", text);
        Assert.Contains("edgeblock_memory_waits_total 1", text);
        buffers.Return(buffer);
    }

    private sealed class NoWaiter : IBufferWaiter
    {
        public void OnBuffersReturned() { }
    }

    [Fact]
    public async Task Scrape_ReportsLatencyHistograms_WithTheTargetsBucketsAndExactSum()
    {
        var (target, ns) = TargetWithNamespace();
        long unit = LatencyHistogram.UnitTicks;
        ns.Counters.ReadLatency.RecordTicks(3 * unit);  // (2, 4] units
        ns.Counters.ReadLatency.RecordTicks(3 * unit);
        ns.Counters.ReadLatency.RecordTicks(100 * unit); // (64, 128] units
        var metrics = new DaemonMetrics(target);
        string text = await metrics.ScrapeAsync();
        string labels = "subsystem=\"nqn.2026-11.io.edgeblock:metrics\",nsid=\"1\",op=\"read\"";
        Assert.Contains($"edgeblock_namespace_latency_seconds_count{{{labels}}} 3", text);
        Assert.Equal(0, Bucket(text, labels, LatencyHistogram.UpperBoundSeconds(1)));
        Assert.Equal(2, Bucket(text, labels, LatencyHistogram.UpperBoundSeconds(2)));
        Assert.Equal(2, Bucket(text, labels, LatencyHistogram.UpperBoundSeconds(6)));
        Assert.Equal(3, Bucket(text, labels, LatencyHistogram.UpperBoundSeconds(7)));
        double expected = 106.0 * unit / System.Diagnostics.Stopwatch.Frequency;
        Assert.Equal(expected, Sum(text, labels), expected * 1e-6);

        // A second scrape adds only what happened since the first.
        ns.Counters.ReadLatency.RecordTicks(unit);
        text = await metrics.ScrapeAsync();
        Assert.Contains($"edgeblock_namespace_latency_seconds_count{{{labels}}} 4", text);
        Assert.Equal(1, Bucket(text, labels, LatencyHistogram.UpperBoundSeconds(0)));
        expected = 107.0 * unit / System.Diagnostics.Stopwatch.Frequency;
        Assert.Equal(expected, Sum(text, labels), expected * 1e-6);
    }

    [Fact]
    public async Task Scrape_ReportsErrorsByStatus_AndQueuesPerController_AndDropsRemovedNamespaces()
    {
        var (target, ns) = TargetWithNamespace();
        ns.Counters.ErrorsByStatus.Increment(EdgeBlock.Nvme.NvmeStatus.LbaOutOfRange);
        ns.Counters.ErrorsByStatus.Increment(EdgeBlock.Nvme.NvmeStatus.LbaOutOfRange);
        ns.Counters.ErrorsByStatus.Increment(EdgeBlock.Nvme.NvmeStatus.WriteFault);
        Interlocked.Add(ref ns.Counters.WriteCommands, 7);
        var metrics = new DaemonMetrics(target);
        string text = await metrics.ScrapeAsync();
        Assert.Contains("edgeblock_namespace_errors_by_status_total{subsystem=\"nqn.2026-11.io.edgeblock:metrics\",nsid=\"1\",sct=\"0h\",sc=\"80h\",status=\"lba_out_of_range\"} 2", text);
        Assert.Contains("sct=\"2h\",sc=\"80h\",status=\"write_fault\"} 1", text);

        // Removed and added again under the same NSID: the new namespace's counts start from zero.
        var subsystem = target.FindSubsystem("nqn.2026-11.io.edgeblock:metrics")!;
        subsystem.RemoveNamespace(1);
        text = await metrics.ScrapeAsync();
        Assert.DoesNotContain("nsid=\"1\"", text);
        var again = new Namespace(1, new NullBlockDevice(1 << 20), Guid.NewGuid());
        subsystem.AddNamespace(again);
        Interlocked.Add(ref again.Counters.WriteCommands, 2);
        text = await metrics.ScrapeAsync();
        Assert.Contains("edgeblock_namespace_ops_total{subsystem=\"nqn.2026-11.io.edgeblock:metrics\",nsid=\"1\",op=\"write\"} 2", text);
        Assert.DoesNotContain("status=\"lba_out_of_range\"", text);
    }

    private static double Sample(string text, string prefix)
    {
        string? line = text.Split('\n').SingleOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal));
        Assert.True(line != null, $"no sample {prefix} in:\n{string.Join('\n', text.Split('\n').Where(l => l.StartsWith("edgeblock_namespace_latency", StringComparison.Ordinal)).Take(12))}");
        return double.Parse(line[(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }

    private static double Bucket(string text, string labels, double le)
    {
        // prometheus-net writes the bound with the shortest round-trip formatting.
        string bound = le.ToString("R", System.Globalization.CultureInfo.InvariantCulture).ToLowerInvariant();
        return Sample(text, $"edgeblock_namespace_latency_seconds_bucket{{{labels},le=\"{bound}\"}}");
    }

    private static double Sum(string text, string labels) => Sample(text, $"edgeblock_namespace_latency_seconds_sum{{{labels}}}");

    private static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    /// <summary>A daemon on the daemon's own HTTP stack: API on a Unix socket in a temp directory, /metrics on TCP.</summary>
    private static async Task<(RunningDaemon Daemon, string Directory)> StartDaemonAsync(IPEndPoint metrics)
    {
        string dir = Path.Combine(Path.GetTempPath(), "ebmx-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        var options = new DaemonOptions
        {
            DataDirectory = dir,
            Listen = new IPEndPoint(IPAddress.Loopback, 0),
            DefaultSizeBytes = 1 << 20,
            DefaultBackend = BackendKind.Memory,
            ApiSocketPath = Path.Combine(dir, "api.sock"),
            MetricsEndpoint = metrics,
        };
        try
        {
            return (await DaemonHost.StartAsync(options, configureLogging: l => l.SetMinimumLevel(LogLevel.Warning)), dir);
        }
        catch
        {
            Directory.Delete(dir, recursive: true);
            throw;
        }
    }

    [Fact]
    public async Task Serve_with_metrics_answers_scrapes_on_the_tcp_address_from_the_daemons_http_stack()
    {
        int port = FreePort();
        var (daemon, dir) = await StartDaemonAsync(new IPEndPoint(IPAddress.Loopback, port));
        try
        {
            var ns = daemon.Daemon.Target.Subsystems.Single().Namespaces.Values.Single();
            Interlocked.Add(ref ns.Counters.WriteCommands, 3);
            using var http = new HttpClient();
            using var response = await http.GetAsync($"http://127.0.0.1:{port}/metrics");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
            string text = await response.Content.ReadAsStringAsync();
            Assert.Contains($"nsid=\"{ns.Nsid}\",op=\"write\"}} 3", text);
            Assert.Contains("process_cpu_seconds_total", text);
        }
        finally
        {
            await daemon.DisposeAsync();
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task The_metrics_address_serves_metrics_only_never_the_management_api()
    {
        int port = FreePort();
        var (daemon, dir) = await StartDaemonAsync(new IPEndPoint(IPAddress.Loopback, port));
        try
        {
            using var http = new HttpClient();
            Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync($"http://127.0.0.1:{port}/v1/status")).StatusCode);
            Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync($"http://127.0.0.1:{port}/openapi/v1.json")).StatusCode);
            Assert.Equal(HttpStatusCode.NotFound, (await http.DeleteAsync($"http://127.0.0.1:{port}/v1/subsystems/{DaemonOptions.DefaultSubsystemNqn}")).StatusCode);
            Assert.Single(daemon.Daemon.Target.Subsystems); // nothing was removed
        }
        finally
        {
            await daemon.DisposeAsync();
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task A_metrics_address_in_use_refuses_the_start_naming_the_address()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var endpoint = (IPEndPoint)taken.LocalEndpoint;
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => StartDaemonAsync(endpoint));
        Assert.StartsWith($"cannot serve metrics on {endpoint}:", error.Message);
    }
}
