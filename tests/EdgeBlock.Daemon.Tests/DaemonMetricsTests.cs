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
