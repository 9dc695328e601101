namespace EdgeBlock.Api;

// GET /v1/stats and /v1/subsystems/{nqn}/namespaces/{nsid}/stats: counters since each namespace went live.
// Latencies are microseconds (from the target's power-of-two histograms: percentiles are interpolated in their bucket).

public sealed record StatsInfo(ProcessStats Process, IReadOnlyList<NamespaceStats> Namespaces, IReadOnlyList<ControllerStats> Controllers,
    IReadOnlyList<VolumeQosStats>? Volumes = null);

/// <summary>
/// QoS of an exported volume (POOL/NAME): its limits and weight (as `volume set` spells them, "-" for none), the
/// seconds during which some of its I/O waited for a limit or its turn, and the I/Os waiting now.
/// </summary>
public sealed record VolumeQosStats(string Volume, string Limits, double ThrottledSeconds, int QueueDepth);

/// <summary>The daemon process: CPU time used (user + system), resident memory, managed heap, threads.</summary>
public sealed record ProcessStats(int ProcessId, long UptimeSeconds, double CpuSeconds, double UserCpuSeconds, double SystemCpuSeconds,
    long RssBytes, long ManagedHeapBytes, int Threads);

public sealed record NamespaceStats(string Subsystem, uint Nsid, OpStats Read, OpStats Write, OpStats Other, long Errors,
    IReadOnlyList<StatusCount> ErrorsByStatus);

/// <summary>Completed commands of a kind (other: flush, write zeroes, deallocate, compare), their bytes and latency.</summary>
public sealed record OpStats(long Ops, long Bytes, LatencyStats Latency);

public sealed record LatencyStats(long Count, double MeanUs, double P50Us, double P90Us, double P99Us, double P999Us);

/// <summary>Commands that completed with this NVMe status (SCT and SC as the spec writes them, e.g. "0h", "80h").</summary>
public sealed record StatusCount(string Sct, string Sc, string Status, long Count);

/// <summary>A connected controller: queues connected (admin included) and I/O queues granted.</summary>
public sealed record ControllerStats(ushort Cntlid, string HostNqn, string Subsystem, int Queues, int IoQueuesGranted, string? RemoteAddress,
    DateTimeOffset ConnectedAt);

/// <summary>PATCH /v1/subsystems/{nqn}: the fields to change (null: unchanged).</summary>
public sealed record UpdateSubsystemRequest(bool? AllowAnyHost = null);

/// <summary>A reload of the config file (SIGHUP): the changes made, one line each ("+ subsystem ...").</summary>
public sealed record ConfigReloadResult(string ConfigPath, IReadOnlyList<string> Changes);
