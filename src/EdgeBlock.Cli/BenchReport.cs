using System.Globalization;
using System.Reflection;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using EdgeBlock.Nvme;

namespace EdgeBlock.Cli;

/// <summary>Figures of one direction (reads or writes) in the measured window.</summary>
internal sealed record BenchDirectionResult(long Ios, long Bytes, double Iops, [property: JsonPropertyName("mb_per_sec")] double MBps, LatencySummary LatencyUs);

internal sealed record BenchVerifyResult(long BlocksChecked, long Mismatches, IReadOnlyList<string> FirstMismatches);

/// <summary>CPU time a process spent in the measured window.</summary>
internal sealed record BenchCpuResult(int? Pid, double CpuSeconds, double UsPerIo, double CoreUtilization, long? ClkTck);

/// <summary>Everything a bench run measured; printed as text or as one JSON object.</summary>
internal sealed record BenchResult
{
    public required string Addr { get; init; }
    public required string Nqn { get; init; }
    public required uint Nsid { get; init; }
    public required string Rw { get; init; }
    public int? RwmixRead { get; init; }
    public required int BlockSize { get; init; }
    public required int IoDepth { get; init; }
    public required int Queues { get; init; }
    public required int LbaSize { get; init; }
    public required long RangeBytes { get; init; }
    public required string Digest { get; init; }
    public required double RampSeconds { get; init; }
    /// <summary>--compressible: the ratio the written data was made to compress at (absent: zeroes).</summary>
    public int? Compressible { get; init; }
    /// <summary>Length of the measured window.</summary>
    public required double Seconds { get; init; }
    public required long Ios { get; init; }
    /// <summary>Commands completed in the whole run, ramp, the drain after the window and any --verify pass included (what the target saw).</summary>
    public long RunIos { get; init; }
    public required long Bytes { get; init; }
    public required double Iops { get; init; }
    /// <summary>Decimal megabytes per second (as fio's MB/s).</summary>
    [JsonPropertyName("mb_per_sec")]
    public required double MBps { get; init; }
    [JsonPropertyName("mib_per_sec")]
    public required double MiBps { get; init; }
    public required LatencySummary LatencyUs { get; init; }
    public BenchDirectionResult? Read { get; init; }
    public BenchDirectionResult? Write { get; init; }
    public required long ErrorCount { get; init; }
    /// <summary>Commands that ended with an NVMe error status, by status.</summary>
    public required IReadOnlyDictionary<string, long> Errors { get; init; }
    /// <summary>Why the connection failed during the run, if it did.</summary>
    public string? TransportError { get; init; }
    public BenchVerifyResult? Verify { get; init; }
    public required BenchCpuResult ClientCpu { get; init; }
    /// <summary>Managed bytes the bench process allocated per I/O in the window (the loop itself allocates none; the progress line and timers do a little).</summary>
    public double ClientAllocatedBytesPerIo { get; init; }
    public BenchCpuResult? ServerCpu { get; init; }

    public bool Ok => ErrorCount == 0 && TransportError == null && (Verify == null || Verify.Mismatches == 0);
}

internal static class BenchReport
{
    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DictionaryKeyPolicy = null,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public static string ToJson(BenchResult result) => JsonSerializer.Serialize(result, JsonOptions);

    private static readonly Dictionary<ushort, string> StatusNames = typeof(NvmeStatus)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Where(f => f.FieldType == typeof(NvmeStatus))
        .GroupBy(f => (ushort)(((NvmeStatus)f.GetValue(null)!).ToField() & 0x3FFE))
        .ToDictionary(g => g.Key, g => g.First().Name);

    /// <summary>"LbaOutOfRange (SCT 0h SC 80h)" for a CQE status field with DNR and More masked off.</summary>
    public static string StatusName(ushort field)
    {
        var status = NvmeStatus.FromField(field);
        string code = $"SCT {(byte)status.Sct:X}h SC {status.Sc:X2}h";
        return StatusNames.TryGetValue(field, out string? name) ? $"{name} ({code})" : code;
    }

    public static string ToText(BenchResult r)
    {
        var c = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        string mix = r.RwmixRead is { } m ? $" ({m}% reads)" : "";
        sb.AppendLine(c, $"edgeblock bench: {r.Rw}{mix}, {FormatSize(r.BlockSize)} I/Os, QD{r.IoDepth} x {r.Queues} queue(s), " +
            $"{r.Seconds:F1} s measured after {r.RampSeconds:F1} s ramp");
        sb.AppendLine(c, $"  target     : {r.Nqn} ns {r.Nsid} at {r.Addr} ({FormatSize(r.LbaSize)} blocks, {FormatSize(r.RangeBytes)} used, digest {r.Digest})");
        if (r.Compressible is { } n) sb.AppendLine(c, $"  data       : compressible about {n}:1");
        sb.AppendLine(c, $"  IOPS       : {r.Iops:N0}  ({r.Ios:N0} I/Os)");
        sb.AppendLine(c, $"  bandwidth  : {r.MBps:N1} MB/s ({r.MiBps:N1} MiB/s)");
        AppendLatency(sb, "latency    ", r.LatencyUs);
        if (r.Read != null && r.Write != null)
        {
            sb.AppendLine(c, $"  reads      : {r.Read.Iops:N0} IOPS, {r.Read.MBps:N1} MB/s");
            AppendLatency(sb, "  read lat ", r.Read.LatencyUs);
            sb.AppendLine(c, $"  writes     : {r.Write.Iops:N0} IOPS, {r.Write.MBps:N1} MB/s");
            AppendLatency(sb, "  write lat", r.Write.LatencyUs);
        }
        if (r.ErrorCount == 0) sb.AppendLine("  errors     : none");
        else
        {
            sb.AppendLine(c, $"  errors     : {r.ErrorCount:N0}");
            foreach (var (status, count) in r.Errors) sb.AppendLine(c, $"               {count:N0} x {status}");
        }
        if (r.TransportError != null) sb.AppendLine(c, $"  connection : {r.TransportError}");
        sb.AppendLine(c, $"  client CPU : {r.ClientCpu.UsPerIo:F2} µs/IO ({r.ClientCpu.CoreUtilization * 100:F0}% of a core, {r.ClientCpu.CpuSeconds:F2} s; {r.ClientAllocatedBytesPerIo:F2} B allocated/IO)");
        if (r.ServerCpu is { } s)
            sb.AppendLine(c, $"  server CPU : {s.UsPerIo:F2} µs/IO ({s.CoreUtilization * 100:F0}% of a core, {s.CpuSeconds:F2} s of pid {s.Pid}, CLK_TCK {s.ClkTck})");
        if (r.Verify is { } v)
        {
            sb.AppendLine(c, $"  verify     : {v.BlocksChecked:N0} blocks checked, {v.Mismatches:N0} mismatches");
            foreach (string line in v.FirstMismatches) sb.AppendLine(c, $"               {line}");
            if (v.Mismatches > v.FirstMismatches.Count) sb.AppendLine(c, $"               ... and {v.Mismatches - v.FirstMismatches.Count:N0} more");
        }
        return sb.ToString();
    }

    private static void AppendLatency(StringBuilder sb, string label, LatencySummary l) =>
        sb.AppendLine(CultureInfo.InvariantCulture,
            $"  {label}: p50 {l.P50:N1} µs, p99 {l.P99:N1} µs, p99.9 {l.P999:N1} µs, max {l.Max:N1} µs, mean {l.Mean:N1} µs");

    public static string FormatSize(long bytes) => bytes switch
    {
        >= 1L << 30 when bytes % (1L << 30) == 0 => $"{bytes >> 30} GiB",
        >= 1L << 20 when bytes % (1L << 20) == 0 => $"{bytes >> 20} MiB",
        >= 1L << 10 when bytes % (1L << 10) == 0 => $"{bytes >> 10} KiB",
        _ => $"{bytes} B",
    };
}
