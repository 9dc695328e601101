namespace EdgeBlock.Api.Pools;

// A pool's scrub: a background job of the daemon that reads every stored chunk of the pool's checksummed
// volumes and snapshots and checks it against its crc32c. At most one runs per pool.
// POST /v1/pools/{pool}/scrub starts one (202), GET answers its status or last report, DELETE cancels it.

/// <summary>
/// Starts a scrub. Resume (default true): go on from where an unfinished one stopped, if there is one; false starts
/// over. IoShare: the share of the drives' time it may keep busy, above 0 and at most 1 (default 0.25).
/// </summary>
public sealed record ScrubRequest(bool? Resume = null, double? IoShare = null);

/// <summary>A chunk whose stored bytes failed their check: the volume (NAME, or NAME@SNAP) and the 4 KiB LBAs it holds.</summary>
public sealed record ScrubError(string Volume, long FirstLba, long LastLba, string What);

/// <summary>
/// A scrub's status, or the report of the last one. State: "running"; "finished" (every chunk checked);
/// "cancelled" (by an operator; a start resumes it); "interrupted" (the daemon stopped or crashed; the daemon's next
/// start resumes it); "failed" (Failure says why; a start resumes it). Started: when it began (a resumed scrub keeps
/// its first start); Ended: when it finished. ChunksTotal: known while running and once finished (chunks are 16 KiB
/// of a volume, stored compressed or not; BytesChecked is what was read). BytesPerSecond and EtaSeconds: of the
/// running scrub since it was (re)started, or the rate of the last run in this daemon's life. DurationSeconds: from
/// Started to Ended (or now), null when stopped unfinished. IoShare: of the run this daemon knows. Volume: the one
/// being read. Errors: every bad chunk found so far (ErrorCount of them).
/// </summary>
public sealed record ScrubStatus(
    string Pool, string State, DateTimeOffset Started, DateTimeOffset? Ended,
    long ChunksChecked, long? ChunksTotal, long BytesChecked, int ErrorCount,
    double? BytesPerSecond, double? EtaSeconds, double? DurationSeconds, double? IoShare, string? Volume, string? Failure,
    IReadOnlyList<ScrubError>? Errors)
{
    public const string Running = "running";
    public const string Finished = "finished";
    public const string Cancelled = "cancelled";
    public const string Interrupted = "interrupted";
    public const string Failed = "failed";
}
