using System.Diagnostics;
using EdgeBlock.Daemon.Management;
using EdgeBlock.Volumes;
using Microsoft.Extensions.Logging;
using Contract = EdgeBlock.Api.Pools;

namespace EdgeBlock.Daemon.Pools;

/// <summary>
/// Pool scrubs as background jobs of the daemon, at most one per pool: started by the API (or at daemon start, to
/// resume one that a stop or crash interrupted), followed through their status, cancelled by the API (the pool keeps
/// the place; a start resumes from there), and stopped at shutdown as interrupted, not cancelled, so that the next
/// start resumes them. The scrub's own state (place, counts, errors) lives in the pool (<see cref="Pool.Scrub"/>);
/// a job adds what only the running daemon knows: the I/O share, the total, the rate and a failure.
/// </summary>
public sealed class ScrubJobs
{
    /// <summary>The share of the drives' time a scrub may use unless the request says otherwise: guests keep the rest.</summary>
    public const double DefaultIoShare = 0.25;

    private static readonly TimeSpan StopWait = TimeSpan.FromSeconds(30);

    private readonly Func<string, Pool> _pools;
    private readonly ILogger _logger;
    private readonly object _lock = new();
    private readonly Dictionary<string, Job> _jobs = new(StringComparer.Ordinal);
    private bool _stopping;

    public ScrubJobs(Func<string, Pool> pools, ILogger logger)
    {
        _pools = pools;
        _logger = logger;
    }

    /// <summary>
    /// Called on the scrub's thread with each progress report and the job's cancellation (tests hold a scrub at a
    /// given chunk with it; it is not for production use).
    /// </summary>
    public Action<string, ScrubProgress, CancellationToken>? ProgressHook { get; set; }

    private sealed class Job(Pool pool, double ioShare, long baseChunks, long baseBytes)
    {
        public Pool Pool { get; } = pool;
        public double IoShare { get; } = ioShare;
        public long BaseChunks { get; } = baseChunks; // where this run began: its rate counts from there
        public long BaseBytes { get; } = baseBytes;
        public Stopwatch Clock { get; } = Stopwatch.StartNew();
        public CancellationTokenSource Cancel { get; } = new();
        public TaskCompletionSource FirstReport { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public Task Run { get; set; } = Task.CompletedTask;
        public volatile ScrubProgress? Latest;
        public volatile bool Stopping;
        public volatile string? Failure;
        public double? FinalRate;
    }

    private sealed class Reporter(ScrubJobs jobs, Job job) : IProgress<ScrubProgress>
    {
        public void Report(ScrubProgress value)
        {
            job.Latest = value;
            job.FirstReport.TrySetResult();
            jobs.ProgressHook?.Invoke(job.Pool.Name, value, job.Cancel.Token);
        }
    }

    /// <summary>Starts a scrub of a pool (refused when one runs) and answers its status once it knows its total.</summary>
    public async Task<Contract.ScrubStatus> StartAsync(string poolName, Contract.ScrubRequest? request)
    {
        Pool pool = _pools(poolName);
        double share = request?.IoShare ?? DefaultIoShare;
        if (!(share > 0 && share <= 1))
            throw new VolumeException(VolumeError.Invalid, $"pool {poolName}: io_share {share} must be above 0 and at most 1 (the share of the drives' time the scrub may use; default {DefaultIoShare})");
        Job job = Start(pool, request?.Resume ?? true, share);
        // The scrub reports its total before it reads anything; wait for that so the answer carries it.
        await Task.WhenAny(job.FirstReport.Task, Task.Delay(TimeSpan.FromSeconds(10))).ConfigureAwait(false);
        return Status(poolName);
    }

    /// <summary>At daemon start: resumes a pool's scrub that was running when the daemon stopped or crashed.</summary>
    public void ResumeInterrupted(Pool pool)
    {
        if (pool.Scrub is not { Finished: false, Cancelled: false } s) return;
        _logger.LogInformation("pool {Pool}: its scrub was interrupted (the daemon stopped or crashed) after {Chunks} chunks; resuming it in the background (I/O share {Share})",
            pool.Name, s.ChunksChecked, DefaultIoShare);
        try
        {
            Start(pool, resume: true, DefaultIoShare);
        }
        catch (VolumeException e)
        {
            _logger.LogWarning("pool {Pool}: could not resume its scrub: {Message}", pool.Name, e.Message);
        }
    }

    private Job Start(Pool pool, bool resume, double share)
    {
        lock (_lock)
        {
            if (_stopping) throw new VolumeException(VolumeError.Busy, $"pool {pool.Name}: the daemon is stopping; start the scrub after it restarts");
            if (_jobs.TryGetValue(pool.Name, out Job? current) && !current.Run.IsCompleted)
            {
                ScrubProgress? p = current.Latest;
                throw new VolumeException(VolumeError.Busy,
                    $"pool {pool.Name}: a scrub is already running ({p?.ChunksChecked ?? 0} of {p?.ChunksTotal.ToString() ?? "?"} chunks); " +
                    $"follow it with `edgeblock pool scrub {pool.Name}`, cancel it with `edgeblock pool scrub {pool.Name} --cancel`");
            }
            ScrubState? before = pool.Scrub;
            bool resuming = resume && before is { Finished: false };
            var job = new Job(pool, share, resuming ? before!.ChunksChecked : 0, resuming ? before!.BytesRead : 0);
            job.Run = Task.Run(() => RunAsync(job, resume));
            _jobs[pool.Name] = job;
            return job;
        }
    }

    private async Task RunAsync(Job job, bool resume)
    {
        try
        {
            ScrubState end = await job.Pool.ScrubAsync(resume, job.IoShare, new Reporter(this, job), job.Cancel.Token).ConfigureAwait(false);
            job.FinalRate = Rate(job, end.BytesRead);
            if (job.Stopping && !end.Finished)
            {
                job.Pool.MarkScrubInterrupted();
                _logger.LogInformation("pool {Pool}: scrub stopped for the shutdown after {Chunks} chunks; the next start resumes it", job.Pool.Name, end.ChunksChecked);
            }
        }
        catch (Exception e)
        {
            job.Failure = e.Message;
            _logger.LogError(e, "pool {Pool}: scrub failed: {Message}", job.Pool.Name, e.Message);
        }
        finally
        {
            job.FirstReport.TrySetResult();
        }
    }

    /// <summary>The running scrub's status, or the last one's report; 404 when none ever ran.</summary>
    public Contract.ScrubStatus Status(string poolName)
    {
        Pool pool = _pools(poolName);
        Job? job;
        lock (_lock) _jobs.TryGetValue(pool.Name, out job);
        bool running = job is { Run.IsCompleted: false };
        ScrubState s = pool.Scrub
            ?? throw new VolumeException(VolumeError.NotFound, $"pool {poolName}: no scrub has run; start one with `edgeblock pool scrub {poolName}`");
        string state = running ? Contract.ScrubStatus.Running
            : s.Finished ? Contract.ScrubStatus.Finished
            : job?.Failure != null ? Contract.ScrubStatus.Failed
            : s.Cancelled ? Contract.ScrubStatus.Cancelled
            : Contract.ScrubStatus.Interrupted;
        ScrubProgress? latest = running ? job!.Latest : null;
        long? total = s.Finished ? s.ChunksChecked : latest is { } l ? Math.Max(l.ChunksTotal, s.ChunksChecked) : null;
        double? rate = running ? Rate(job!, s.BytesRead) : job?.FinalRate;
        double? eta = null;
        if (running && total is { } t && job!.Clock.Elapsed.TotalSeconds is > 0 and var seconds && s.ChunksChecked > job.BaseChunks)
            eta = Math.Round((t - s.ChunksChecked) / ((s.ChunksChecked - job.BaseChunks) / seconds), 1);
        double? duration = s.Finished && s.Ended is { } ended ? (ended - s.Started).TotalSeconds
            : running ? (DateTimeOffset.UtcNow - s.Started).TotalSeconds : null;
        return new Contract.ScrubStatus(pool.Name, state, s.Started, s.Ended, s.ChunksChecked, total, s.BytesRead, s.Errors.Count,
            rate, eta, duration is { } d ? Math.Round(d, 1) : null, job?.IoShare, latest?.Volume, running ? null : job?.Failure,
            s.Errors.Select(e => e.ToContract()).ToList());
    }

    /// <summary>Cancels the running scrub and answers its status once it stopped (its place is kept); 409 when none runs.</summary>
    public async Task<Contract.ScrubStatus> CancelAsync(string poolName)
    {
        Pool pool = _pools(poolName);
        Job? job;
        lock (_lock) _jobs.TryGetValue(pool.Name, out job);
        if (job is not { Run.IsCompleted: false })
            throw ManagementException.Conflict($"pool {poolName}: no scrub is running (see the last one with `edgeblock pool scrub {poolName} --status`)");
        await job.Cancel.CancelAsync().ConfigureAwait(false);
        try
        {
            await job.Run.WaitAsync(StopWait).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new VolumeException(VolumeError.Busy, $"pool {poolName}: the scrub did not stop within {StopWait.TotalSeconds:0} s (a drive read hangs?); it stops after that read");
        }
        return Status(poolName);
    }

    /// <summary>At shutdown, before the pools close: stops running scrubs, saved as interrupted so that the next start resumes them.</summary>
    public async Task StopAllAsync()
    {
        List<Job> running;
        lock (_lock)
        {
            _stopping = true;
            running = _jobs.Values.Where(j => !j.Run.IsCompleted).ToList();
        }
        foreach (Job job in running)
        {
            job.Stopping = true;
            await job.Cancel.CancelAsync().ConfigureAwait(false);
        }
        try
        {
            await Task.WhenAll(running.Select(j => j.Run)).WaitAsync(StopWait).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            _logger.LogWarning("a scrub did not stop within {Seconds} s; closing its pool anyway", StopWait.TotalSeconds);
        }
    }

    private static double Rate(Job job, long bytes)
    {
        double seconds = job.Clock.Elapsed.TotalSeconds;
        return seconds > 0 ? Math.Round((bytes - job.BaseBytes) / seconds) : 0;
    }
}
