using System.CommandLine;
using System.Globalization;
using EdgeBlock.Api;

namespace EdgeBlock.Cli;

/// <summary>
/// `edgeblock stats [NQN [NSID]] [--json]`: I/O per namespace (ops, bytes, latency percentiles, errors by
/// NVMe status), queues per connected controller, QoS per exported volume (limits, throttled time, I/Os
/// waiting), and the daemon's CPU and memory. Counters run from when
/// each namespace went live; the same figures are on /metrics for Prometheus.
/// </summary>
public static class StatsCommand
{
    public static void AddTo(RootCommand root)
    {
        var socket = root.Options.OfType<Option<string?>>().First(o => o.Name == "--api-socket");
        var nqn = new Argument<string?>("NQN") { Description = "Only this subsystem's namespaces", Arity = ArgumentArity.ZeroOrOne };
        var nsid = new Argument<uint?>("NSID") { Description = "Only this namespace (with NQN)", Arity = ArgumentArity.ZeroOrOne };
        var json = new Option<bool>("--json") { Description = "Print the API's JSON instead of tables" };
        var command = new Command("stats", "I/O statistics: per namespace ops, bytes, latency (p50/p99 µs), errors by NVMe status; queues per controller; daemon CPU and memory")
        {
            nqn, nsid, json,
        };
        ApiAction.Set(command, socket, async call =>
        {
            var (api, parse, output) = (call.Api, call.Parse, call.Out);
            string? subsystem = parse.GetValue(nqn);
            if (parse.GetValue(nsid) is { } id && subsystem != null)
            {
                string body = await api.SendAsync(HttpMethod.Get,
                    $"v1/subsystems/{ApiClient.Escape(subsystem)}/namespaces/{id.ToString(CultureInfo.InvariantCulture)}/stats");
                if (parse.GetValue(json)) output.WriteLine(body);
                else WriteNamespaces(output, [ApiClient.Parse<NamespaceStats>(body)]);
                return 0;
            }
            string all = await api.SendAsync(HttpMethod.Get, "v1/stats");
            if (parse.GetValue(json)) { output.WriteLine(all); return 0; }
            var stats = ApiClient.Parse<StatsInfo>(all);
            var p = stats.Process;
            output.WriteLine($"daemon pid {p.ProcessId}, up {TimeSpan.FromSeconds(p.UptimeSeconds)}: cpu {p.CpuSeconds:F1} s (user {p.UserCpuSeconds:F1}, system {p.SystemCpuSeconds:F1}), "
                             + $"rss {Sizes.Format(p.RssBytes)}, managed heap {Sizes.Format(p.ManagedHeapBytes)}, {p.Threads} threads");
            output.WriteLine();
            WriteNamespaces(output, stats.Namespaces.Where(n => subsystem == null || n.Subsystem == subsystem).ToList());
            output.WriteLine();
            Table.Write(output, ["CNTLID", "HOST NQN", "SUBSYSTEM", "QUEUES", "IO QUEUES GRANTED", "ADDRESS"],
                stats.Controllers.Where(c => subsystem == null || c.Subsystem == subsystem).Select(c => new[]
                {
                    Num(c.Cntlid), c.HostNqn, c.Subsystem, Num(c.Queues), Num(c.IoQueuesGranted), c.RemoteAddress ?? "-",
                }));
            if (subsystem == null && stats.Volumes is { Count: > 0 } volumes)
            {
                output.WriteLine();
                Table.Write(output, ["VOLUME", "QOS", "THROTTLED s", "QUEUED"], volumes.Select(v => new[]
                {
                    v.Volume, v.Limits, v.ThrottledSeconds.ToString("0.###", CultureInfo.InvariantCulture), Num(v.QueueDepth),
                }));
            }
            return 0;
        });
        root.Subcommands.Add(command);
    }

    private static void WriteNamespaces(TextWriter output, IReadOnlyList<NamespaceStats> namespaces)
    {
        Table.Write(output, ["SUBSYSTEM", "NSID", "OP", "OPS", "BYTES", "MEAN µs", "P50 µs", "P99 µs", "P99.9 µs"],
            namespaces.SelectMany(n => new[] { ("read", n.Read), ("write", n.Write), ("other", n.Other) }.Select(x => new[]
            {
                n.Subsystem, Num(n.Nsid), x.Item1, Num(x.Item2.Ops), x.Item1 == "other" ? "-" : Sizes.Format(x.Item2.Bytes),
                Us(x.Item2.Latency, x.Item2.Latency.MeanUs), Us(x.Item2.Latency, x.Item2.Latency.P50Us), Us(x.Item2.Latency, x.Item2.Latency.P99Us),
                Us(x.Item2.Latency, x.Item2.Latency.P999Us),
            })));
        var errors = namespaces.SelectMany(n => n.ErrorsByStatus.Select(e => new[] { n.Subsystem, Num(n.Nsid), e.Status, e.Sct, e.Sc, Num(e.Count) })).ToList();
        output.WriteLine();
        if (errors.Count == 0) output.WriteLine("errors: none");
        else Table.Write(output, ["SUBSYSTEM", "NSID", "ERROR STATUS", "SCT", "SC", "COUNT"], errors);
    }

    private static string Us(LatencyStats l, double value) =>
        l.Count == 0 ? "-" : value.ToString(value < 100 ? "0.0" : "0", CultureInfo.InvariantCulture);

    private static string Num(long n) => n.ToString(CultureInfo.InvariantCulture);
}
