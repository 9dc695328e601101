using System.Net;

namespace EdgeBlock.Daemon.Management;

/// <summary>
/// What serves the desired state: EdgeBlock's own target (<see cref="EdgeBlockEngine"/>: NvmeTarget, NVMe/TCP
/// listeners, vhost-user servers) or the Linux kernel's nvmet through configfs
/// (<see cref="KernelEngine.KernelTarget"/>). The management layer validates a state, computes the
/// <see cref="StateDiff"/> from the running one and hands it over; it never asks which engine runs.
/// What an engine cannot serve it refuses itself, naming why. Not thread-safe: the caller serializes.
/// </summary>
public interface ITargetEngine : IAsyncDisposable
{
    /// <summary>
    /// Serves a whole validated state on an empty engine (daemon start). What may come right later (a volume
    /// whose pool did not open; vhost exports under the kernel engine) is logged and left out, not refused.
    /// So are the exports in <paramref name="refused"/> (by <see cref="StoragePolicy.NamespaceKey"/> and
    /// <see cref="StoragePolicy.VhostKey"/>, with why): the storage policy's verdict on a hand-edited config.
    /// </summary>
    Task StartAsync(DesiredState state, IReadOnlyDictionary<string, string>? refused = null);

    /// <summary>
    /// Takes the running state from <see cref="StateDiff.From"/> to <see cref="StateDiff.To"/>. A refusal
    /// throws <see cref="EngineChangeException"/> after going back to <see cref="StateDiff.From"/>
    /// (its <see cref="EngineChangeException.UndoFailures"/> say what could not be undone).
    /// </summary>
    Task ApplyAsync(StateDiff diff);

    /// <summary>Stops serving what this process serves (daemon stop, failed start); devices close once drained.</summary>
    Task ClearAsync();

    /// <summary>Listeners this process runs itself.</summary>
    int ListenerCount { get; }

    /// <summary>A listener this process runs (its bound endpoint has the real port when 0 was asked for), or null.</summary>
    ListenerState? Listener(string address);

    /// <summary>What the API shows of a vhost export of the desired state.</summary>
    VhostInfo DescribeVhost(VhostSpec spec);

    /// <summary>What the API shows of a host device of the desired state.</summary>
    HostDeviceInfo DescribeHostDevice(HostDeviceSpec spec);
}

/// <summary>A running listener: where it is bound and how many connections it has.</summary>
public readonly record struct ListenerState(IPEndPoint? Bound, int Connections);

/// <summary>A diff an engine refused: <see cref="Cause"/> says why; the engine went back to where it was, except <see cref="UndoFailures"/>.</summary>
public sealed class EngineChangeException(Exception cause, IReadOnlyList<string> undoFailures) : Exception(cause.Message, cause)
{
    public Exception Cause { get; } = cause;
    public IReadOnlyList<string> UndoFailures { get; } = undoFailures;
}
