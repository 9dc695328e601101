using System.Net;
using System.Net.Sockets;
using EdgeBlock.Storage;
using EdgeBlock.Target;

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
        using var metrics = new DaemonMetrics(target);
        string text = await metrics.ScrapeAsync();
        Assert.Contains("edgeblock_namespace_ops_total{subsystem=\"nqn.2026-11.io.edgeblock:metrics\",nsid=\"1\",op=\"read\"} 5", text);
        Assert.Contains("edgeblock_namespace_bytes_total{subsystem=\"nqn.2026-11.io.edgeblock:metrics\",nsid=\"1\",op=\"write\"} 8192", text);
        Assert.Contains("process_cpu_seconds_total", text);
    }

    [Fact]
    public async Task Scrape_ReportsLatencyHistograms_WithTheTargetsBucketsAndExactSum()
    {
        var (target, ns) = TargetWithNamespace();
        long unit = LatencyHistogram.UnitTicks;
        ns.Counters.ReadLatency.RecordTicks(3 * unit);  // (2, 4] units
        ns.Counters.ReadLatency.RecordTicks(3 * unit);
        ns.Counters.ReadLatency.RecordTicks(100 * unit); // (64, 128] units
        using var metrics = new DaemonMetrics(target);
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
        using var metrics = new DaemonMetrics(target);
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

    [Fact]
    public async Task Start_ServesMetricsOverHttp()
    {
        var (target, ns) = TargetWithNamespace();
        Interlocked.Add(ref ns.Counters.WriteCommands, 3);
        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0)) { probe.Start(); port = ((IPEndPoint)probe.LocalEndpoint).Port; }
        using var metrics = new DaemonMetrics(target);
        metrics.Start(new IPEndPoint(IPAddress.Loopback, port));
        using var http = new HttpClient();
        string text = await http.GetStringAsync($"http://127.0.0.1:{port}/metrics");
        Assert.Contains("op=\"write\"} 3", text);
    }
}
