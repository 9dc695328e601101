using System.CommandLine;
using EdgeBlock.Api;
using EdgeBlock.Api.Pools;

namespace EdgeBlock.Cli;

/// <summary>
/// `edgeblock volume set POOL/NAME` and the QoS options of `edgeblock group set POOL/TENANT`: limits (IOPS, bytes per
/// second, bursts) and weights, kept in the daemon's desired state. An option left out stays as it is; 0 or none
/// removes that limit.
/// </summary>
public static partial class PoolCommands
{
    /// <summary>The QoS options a volume and a group share.</summary>
    private sealed record QosOptions(Option<string?> Iops, Option<string?> Bandwidth, Option<string?> BurstIops, Option<string?> BurstBandwidth)
    {
        public static QosOptions Create(string whose) => new(
            new Option<string?>("--iops") { Description = $"Most I/Os per second {whose} (0 or none: no limit)", HelpName = "N" },
            new Option<string?>("--bw") { Description = $"Most bytes per second {whose}, e.g. 100M or 100M/s (0 or none: no limit)", HelpName = "SIZE/s" },
            new Option<string?>("--burst-iops") { Description = "I/Os that may go at once after an idle spell (default: a tenth of a second at --iops)", HelpName = "N" },
            new Option<string?>("--burst-bw") { Description = "Bytes that may go at once after an idle spell (default: a tenth of a second at --bw)", HelpName = "SIZE" });

        public IEnumerable<Option<string?>> All => [Iops, Bandwidth, BurstIops, BurstBandwidth];

        public bool AnyGiven(ParseResult parse) => All.Any(o => parse.GetValue(o) != null);

        public bool AnyGiven(System.CommandLine.Parsing.CommandResult command) => All.Any(o => command.GetValue(o) != null);
    }

    private static Command VolumeSet(Option<string?> socket)
    {
        var name = VolumeArgument("POOL/NAME", "The volume");
        var qos = QosOptions.Create("for all of the volume's exports together");
        var weight = new Option<string?>("--weight")
        {
            Description = "Share of a saturated pool relative to the other volumes' (1-10000; unset counts as 1; 0 or none: unset)", HelpName = "W",
        };
        var set = new Command("set", "Set a volume's QoS: limits with bursts, and a weight (applies to NVMe/TCP and vhost-user exports alike)") { name, weight };
        foreach (var option in qos.All) set.Options.Add(option);
        set.Validators.Add(r =>
        {
            if (!qos.AnyGiven(r) && r.GetValue(weight) == null) r.AddError("give at least one of --iops, --bw, --burst-iops, --burst-bw, --weight");
        });
        SetAction(set, socket, async (c, parse) =>
        {
            var (pool, volume) = Split(parse.GetValue(name)!);
            var info = ApiClient.Parse<QosInfo>(await c.Api.SendAsync(HttpMethod.Put, $"v1/pools/{ApiClient.Escape(pool)}/volumes/{ApiClient.Escape(volume)}/qos",
                new SetVolumeQosRequest(parse.GetValue(qos.Iops), parse.GetValue(qos.Bandwidth), parse.GetValue(qos.BurstIops), parse.GetValue(qos.BurstBandwidth),
                    parse.GetValue(weight))));
            c.Out.WriteLine($"volume {pool}/{volume}: qos {DescribeQos(info)}");
            return 0;
        });
        return set;
    }

    /// <summary>Sends a group's QoS when any of its options was given; the line to print, else null.</summary>
    private static async Task<string?> SetGroupQosAsync(Context c, ParseResult parse, QosOptions qos, string pool, string tenant)
    {
        if (!qos.AnyGiven(parse)) return null;
        var info = ApiClient.Parse<QosInfo>(await c.Api.SendAsync(HttpMethod.Put, $"v1/pools/{ApiClient.Escape(pool)}/groups/{ApiClient.Escape(tenant)}/qos",
            new SetGroupQosRequest(parse.GetValue(qos.Iops), parse.GetValue(qos.Bandwidth), parse.GetValue(qos.BurstIops), parse.GetValue(qos.BurstBandwidth))));
        return $"group {pool}/{tenant}: qos {DescribeQos(info)}";
    }

    /// <summary>"iops 1000 (burst 100), bandwidth 10 MiB/s, weight 4", or "none".</summary>
    private static string DescribeQos(QosInfo? q)
    {
        if (q == null) return "none";
        var parts = new List<string>();
        if (q.Iops is { } i) parts.Add($"iops {Num(i)} (burst {(q.BurstIops is { } b ? Num(b) : "default")})");
        if (q.BytesPerSecond is { } bw) parts.Add($"bandwidth {Sizes.Format(bw)}/s (burst {(q.BurstBytes is { } b ? Sizes.Format(b) : "default")})");
        if (q.Weight is { } w) parts.Add($"weight {Num(w)}");
        return parts.Count == 0 ? "none" : string.Join(", ", parts);
    }
}
