using EdgeBlock.Volumes;

namespace EdgeBlock.Daemon.Management;

/// <summary>
/// Checks the QoS part of a desired state: each refusal names the field (JSON path), its value and why. The ranges
/// refuse what is surely a typo (no drive does a billion I/Os per second) rather than what is merely unusual.
/// </summary>
public static class QosValidator
{
    public const long MaxIops = 100_000_000;
    public const long MaxBytesPerSecond = 1L << 40; // 1 TiB/s
    public const int MaxWeight = 10_000;

    public static void Validate(QosSpec? qos, List<string> errors)
    {
        if (qos == null) return; // none
        if (qos.Volumes == null) errors.Add("qos.volumes: is null; give a list ([] for none)");
        if (qos.Groups == null) errors.Add("qos.groups: is null; give a list ([] for none)");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < (qos.Volumes?.Count ?? 0); i++)
        {
            var v = qos.Volumes![i];
            string at = $"qos.volumes[{i}]";
            if (v == null) { errors.Add($"{at}: is null"); continue; }
            CheckName(v.Volume, $"{at}.volume", "POOL/VOLUME", seen, errors);
            if (v.Weight is { } w && (w < 1 || w > MaxWeight)) errors.Add($"{at}.weight: {w} is out of range (1..{MaxWeight})");
            CheckLimits(v, at, errors);
        }
        seen.Clear();
        for (int i = 0; i < (qos.Groups?.Count ?? 0); i++)
        {
            var g = qos.Groups![i];
            string at = $"qos.groups[{i}]";
            if (g == null) { errors.Add($"{at}: is null"); continue; }
            CheckName(g.Group, $"{at}.group", "POOL/GROUP", seen, errors);
            CheckLimits(g, at, errors);
        }
    }

    /// <summary>
    /// What a running daemon refuses besides: a volume or group its pools do not have. <paramref name="volumeProblem"/>
    /// and <paramref name="groupProblem"/> answer null when the name is known, else why not; <paramref name="judge"/>
    /// picks the entries to check (default: all).
    /// </summary>
    public static void CheckNames(QosSpec? qos, Func<string, string, string?> volumeProblem, Func<string, string, string?> groupProblem, List<string> errors,
        Func<QosLimitsSpec, bool>? judge = null)
    {
        if (qos?.Volumes == null || qos.Groups == null) return; // refused by Validate
        judge ??= _ => true;
        for (int i = 0; i < qos.Volumes.Count; i++)
            if (qos.Volumes[i] != null && judge(qos.Volumes[i]) && PoolNames.TrySplit(qos.Volumes[i].Volume ?? "", out string pool, out string name) && volumeProblem(pool, name) is { } why)
                errors.Add($"qos.volumes[{i}].volume: '{qos.Volumes[i].Volume}': {why}");
        for (int i = 0; i < qos.Groups.Count; i++)
            if (qos.Groups[i] != null && judge(qos.Groups[i]) && PoolNames.TrySplit(qos.Groups[i].Group ?? "", out string pool, out string name) && groupProblem(pool, name) is { } why)
                errors.Add($"qos.groups[{i}].group: '{qos.Groups[i].Group}': {why}");
    }

    private static void CheckName(string? key, string field, string form, HashSet<string> seen, List<string> errors)
    {
        if (!PoolNames.TrySplit(key ?? "", out string pool, out string name) || !PoolNames.IsValid(pool) || !PoolNames.IsValid(name))
            errors.Add($"{field}: '{key}' is not {form}");
        else if (!seen.Add(key!)) errors.Add($"{field}: '{key}' is listed twice");
    }

    private static void CheckLimits(QosLimitsSpec l, string at, List<string> errors)
    {
        if (l.IsEmpty) errors.Add($"{at}: sets nothing; remove the entry");
        Range(l.Iops, $"{at}.iops", MaxIops, errors);
        Range(l.BurstIops, $"{at}.burst_iops", MaxIops, errors);
        Range(l.BytesPerSecond, $"{at}.bytes_per_second", MaxBytesPerSecond, errors);
        Range(l.BurstBytes, $"{at}.burst_bytes", MaxBytesPerSecond, errors);
        if (l.BurstIops != null && l.Iops == null) errors.Add($"{at}.burst_iops: a burst needs its rate (iops)");
        if (l.BurstBytes != null && l.BytesPerSecond == null) errors.Add($"{at}.burst_bytes: a burst needs its rate (bytes_per_second)");
    }

    private static void Range(long? value, string field, long max, List<string> errors)
    {
        if (value is { } v && (v < 1 || v > max)) errors.Add($"{field}: {v} is out of range (1..{max}; leave it out for none)");
    }
}
