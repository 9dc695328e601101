using EdgeBlock.Daemon.Pools;
using EdgeBlock.Storage;
using EdgeBlock.Target;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Daemon.Management;

/// <summary>
/// Closes devices nothing routes to any more, by count and not by clock: a namespace taken out of its
/// subsystem stops admitting commands and its device is flushed and closed as soon as the commands inside
/// it finished (<see cref="Namespace.DrainAsync"/>) — at once when there are none. If some are still
/// inside after <see cref="MaxWait"/>, a warning names the namespace and the count and the device closes
/// anyway. A vhost export's device is closed once its server stopped, which waits for its requests.
/// </summary>
public sealed class DeviceTeardown
{
    /// <summary>How long a removed namespace waits for its commands before its device closes regardless.</summary>
    public static readonly TimeSpan DefaultMaxWait = TimeSpan.FromSeconds(10);

    private readonly ILogger _logger;
    private readonly List<Task> _closing = [];

    public DeviceTeardown(ILogger logger, TimeSpan? maxWait = null)
    {
        _logger = logger;
        MaxWait = maxWait ?? DefaultMaxWait;
    }

    public TimeSpan MaxWait { get; }

    /// <summary>A namespace already removed from subsystem <paramref name="nqn"/>: drain, then flush and close its device.</summary>
    public void Retire(string nqn, Namespace ns) => Track(ns.Device, async () =>
    {
        long left = await ns.DrainAsync(MaxWait).ConfigureAwait(false);
        if (left > 0)
            _logger.LogWarning("subsystem {Nqn}: namespace {Nsid} removed with {Count} command(s) still inside its device after {Seconds} s; closing the device anyway",
                nqn, ns.Nsid, left, MaxWait.TotalSeconds);
    });

    /// <summary>A device no command can reach: never served, or its vhost server stopped after its requests completed.</summary>
    public void Retire(IBlockDevice device) => Track(device, static () => Task.CompletedTask);

    /// <summary>Completes when every device retired so far is closed.</summary>
    public Task WhenClosedAsync()
    {
        lock (_closing) return Task.WhenAll(_closing.ToArray());
    }

    private void Track(IBlockDevice device, Func<Task> drain)
    {
        if (device is VolumeExport export) export.Detached = true; // no namespace routes to it any more
        var closing = CloseAsync(device, drain);
        lock (_closing)
        {
            _closing.RemoveAll(t => t.IsCompleted);
            _closing.Add(closing);
        }
    }

    private async Task CloseAsync(IBlockDevice device, Func<Task> drain)
    {
        try
        {
            await drain().ConfigureAwait(false);
            var status = await device.FlushAsync().ConfigureAwait(false);
            if (status != BlockStatus.Success) _logger.LogError("flush of a removed namespace failed: {Status}", status);
        }
        finally
        {
            await device.DisposeAsync().ConfigureAwait(false);
        }
    }
}
