using System.Globalization;
using EdgeBlock.Api.Pools;

namespace EdgeBlock.Daemon.Management;

/// <summary>
/// The API's QoS changes applied to an entry of the desired state: a field left out stays, "0" or "none" removes
/// it, anything else must parse and lie in range; a refusal names the field as the request (and the CLI flag) does.
/// </summary>
public static class QosRequests
{
    public static void Apply(VolumeQosSpec spec, SetVolumeQosRequest request, string what)
    {
        ApplyLimits(spec, request.Iops, request.Bandwidth, request.BurstIops, request.BurstBandwidth, what);
        if (request.Weight != null) spec.Weight = (int?)Number(request.Weight, "weight", QosValidator.MaxWeight, what, "a weight (1-10000)");
    }

    public static void Apply(GroupQosSpec spec, SetGroupQosRequest request, string what) =>
        ApplyLimits(spec, request.Iops, request.Bandwidth, request.BurstIops, request.BurstBandwidth, what);

    private static void ApplyLimits(QosLimitsSpec spec, string? iops, string? bandwidth, string? burstIops, string? burstBandwidth, string what)
    {
        if (iops != null) spec.Iops = Number(iops, "iops", QosValidator.MaxIops, what, "a number of I/Os per second");
        if (burstIops != null) spec.BurstIops = Number(burstIops, "burst_iops", QosValidator.MaxIops, what, "a number of I/Os");
        if (bandwidth != null) spec.BytesPerSecond = Size(bandwidth, "bandwidth", what);
        if (burstBandwidth != null) spec.BurstBytes = Size(burstBandwidth, "burst_bandwidth", what);
        // A burst without its rate would mean nothing: one asked for alone is refused; clearing a rate clears its burst.
        if (spec.Iops == null && spec.BurstIops != null && burstIops != null) throw ManagementException.Invalid($"{what}: burst_iops: a burst needs its rate (iops)");
        if (spec.BytesPerSecond == null && spec.BurstBytes != null && burstBandwidth != null)
            throw ManagementException.Invalid($"{what}: burst_bandwidth: a burst needs its rate (bandwidth)");
        if (spec.Iops == null) spec.BurstIops = null;
        if (spec.BytesPerSecond == null) spec.BurstBytes = null;
    }

    private static bool IsNone(string text) => text.Trim() is "0" or "" || text.Trim().Equals("none", StringComparison.OrdinalIgnoreCase);

    private static long? Number(string text, string field, long max, string what, string expected)
    {
        if (IsNone(text)) return null;
        if (!long.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out long value))
            throw ManagementException.Invalid($"{what}: {field}: '{text}' is not {expected} (or none)");
        if (value > max) throw ManagementException.Invalid($"{what}: {field}: {value} is out of range (1..{max}, or none)");
        return value;
    }

    private static long? Size(string text, string field, string what)
    {
        if (IsNone(text)) return null;
        string size = text.Trim();
        if (size.EndsWith("/s", StringComparison.OrdinalIgnoreCase)) size = size[..^2];
        if (!Api.Sizes.TryParse(size, out long bytes, out string error)) throw ManagementException.Invalid($"{what}: {field}: {error} (or none)");
        if (bytes == 0) return null;
        if (bytes > QosValidator.MaxBytesPerSecond) throw ManagementException.Invalid($"{what}: {field}: '{text}' is out of range (at most 1T/s, or none)");
        return bytes;
    }

    /// <summary>"iops 1000 (burst 100), bandwidth 10 MiB/s, weight 4": for diff lines and logs.</summary>
    public static string Describe(QosLimitsSpec spec)
    {
        var parts = new List<string>();
        if (spec.Iops is { } i) parts.Add($"iops {i}{(spec.BurstIops is { } b ? $" (burst {b})" : "")}");
        if (spec.BytesPerSecond is { } bw) parts.Add($"bandwidth {Api.Sizes.Format(bw)}/s{(spec.BurstBytes is { } b ? $" (burst {Api.Sizes.Format(b)})" : "")}");
        if (spec is VolumeQosSpec { Weight: { } w }) parts.Add($"weight {w}");
        return string.Join(", ", parts);
    }
}
