using Microsoft.Extensions.Logging;

namespace EdgeBlock.Daemon.Pools;

/// <summary>
/// Whether a Ceph pool's cluster answers. A probe lists the pool's images (a monitor and an OSD must answer), connecting
/// first when the pool never did (its cluster was gone when the daemon started); one that fails, or is not answered within
/// <see cref="Timeout"/>, marks the pool degraded with the reason, and the next answered one clears it: librados
/// reconnects by itself, so I/O and management resume without a restart. Probes run every
/// interval and whenever a caller asks (<see cref="Probe"/>); one at a time, so a hung one is waited for, never stacked.
/// </summary>
public sealed class CephHealth : IDisposable
{
    private readonly string _pool;
    private readonly Func<int> _listImages;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private readonly ITimer _timer;
    private Task<int>? _probe;
    private string? _degraded;
    private int _images;
    private bool _stopped;

    /// <param name="listImages">The probe: connects when needed, returns the pool's image count; blocks at most the client timeout.</param>
    public CephHealth(string pool, Func<int> listImages, TimeSpan interval, TimeSpan timeout, ILogger logger, int images)
    {
        _pool = pool;
        _listImages = listImages;
        _logger = logger;
        _images = images;
        Timeout = timeout;
        _timer = TimeProvider.System.CreateTimer(_ => _ = ProbeAsync(), null, interval, interval);
    }

    /// <summary>How long a probe may take before the pool counts as degraded (far below the client's op timeout).</summary>
    public TimeSpan Timeout { get; }

    /// <summary>Why the pool is degraded, or null while its cluster answers.</summary>
    public string? Degraded => Volatile.Read(ref _degraded);

    /// <summary>The pool's image count as the last answered probe saw it.</summary>
    public int Images => Volatile.Read(ref _images);

    /// <summary>Probes (or joins the probe in flight), waits for it at most <see cref="Timeout"/>; returns why the pool is degraded, or null.</summary>
    public string? Probe() => ProbeAsync().GetAwaiter().GetResult();

    /// <summary>
    /// <see cref="Probe"/> without holding a thread while it waits: the timer's probes use it, so that a cluster that does
    /// not answer (a connect waits up to the client timeout) never ties up thread-pool threads the probe itself needs.
    /// </summary>
    public async Task<string?> ProbeAsync()
    {
        Task<int> probe;
        lock (_lock)
        {
            if (_stopped) return Degraded;
            if (_probe is not { IsCompleted: false })
            {
                _probe = Task.Run(_listImages);
                // A probe that fails after its caller stopped waiting is still observed.
                _probe.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
            }
            probe = _probe;
        }
        try
        {
            Volatile.Write(ref _images, await probe.WaitAsync(Timeout).ConfigureAwait(false));
            if (Interlocked.Exchange(ref _degraded, null) is { } was)
                _logger.LogWarning("pool {Pool}: the Ceph cluster answers again (it was degraded: {Reason})", _pool, was);
        }
        catch (TimeoutException)
        {
            Degrade($"the Ceph cluster did not answer within {Timeout.TotalSeconds:0.#} s");
        }
        catch (Exception e)
        {
            Degrade(e.Message);
        }
        return Degraded;
    }

    private void Degrade(string reason)
    {
        if (Interlocked.Exchange(ref _degraded, reason) is null)
            _logger.LogError("pool {Pool} degraded: {Reason}; its volumes' I/O completes with Namespace Not Ready when the client timeout runs out", _pool, reason);
    }

    /// <summary>Stops probing; true unless a probe is still running after <paramref name="wait"/> (its cluster must then not be closed under it).</summary>
    public bool Stop(TimeSpan wait)
    {
        _timer.Dispose();
        Task? probe;
        lock (_lock)
        {
            _stopped = true;
            probe = _probe;
        }
        return probe is null || ((IAsyncResult)probe).AsyncWaitHandle.WaitOne(wait);
    }

    public void Dispose() => Stop(TimeSpan.Zero);
}
