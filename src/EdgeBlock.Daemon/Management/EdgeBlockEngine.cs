using System.Collections.Concurrent;
using System.Net;
using EdgeBlock.Daemon.Pools;
using EdgeBlock.Storage;
using EdgeBlock.Target;
using EdgeBlock.Transports.Tcp;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Daemon.Management;

/// <summary>
/// EdgeBlock's own engine: makes the live <see cref="NvmeTarget"/>, its NVMe/TCP listeners and the vhost-user
/// servers match the desired state, one step per change of a <see cref="StateDiff"/>. Each step either
/// completes or throws having changed nothing; a diff whose step fails undoes the steps before it.
/// Removed namespaces and exports close their devices through <see cref="DeviceTeardown"/>.
/// </summary>
public sealed partial class EdgeBlockEngine : ITargetEngine
{
    private readonly NvmeTarget _target;
    private readonly string _dataDirectory;
    private readonly ILogger _logger;
    private readonly ILogger _transportLogger;
    /// <summary>Every listener's data buffers (null: the transports' shared default pool).</summary>
    private readonly DataBufferPool? _buffers;
    private readonly ConcurrentDictionary<string, TcpTransport> _listeners = new(StringComparer.Ordinal); // read by status calls outside the change lock
    private readonly DeviceTeardown _teardown;
    private readonly PoolManager? _pools;
    // Volume namespaces whose pool or volume was unavailable at start: in the desired state, not live.
    private readonly HashSet<(string Nqn, uint Nsid)> _dormant = [];
    private bool _starting;
    /// <summary>serve --busy-poll: every NVMe/TCP listener's window (TcpTransport.BusyPoll).</summary>
    private readonly TimeSpan _busyPoll;
    // At start: exports the storage policy refused (left out like a volume whose pool did not open).
    private IReadOnlyDictionary<string, string> _refused = new Dictionary<string, string>();

    public EdgeBlockEngine(NvmeTarget target, string dataDirectory, ILogger logger, ILogger transportLogger, PoolManager? pools = null,
        DeviceTeardown? teardown = null, DataBufferPool? buffers = null, TimeSpan busyPoll = default)
    {
        _buffers = buffers;
        _busyPoll = busyPoll;
        _target = target;
        _dataDirectory = dataDirectory;
        _logger = logger;
        _transportLogger = transportLogger;
        _pools = pools;
        _teardown = teardown ?? new DeviceTeardown(logger);
    }

    public int ListenerCount => _listeners.Count;

    public ListenerState? Listener(string address) =>
        ConfigValidator.TryParseEndPoint(address, out var ep, out _) && _listeners.GetValueOrDefault(ep.ToString()) is { } t
            ? new ListenerState(t.LocalEndPoint, t.ConnectionCount) : null;

    public async Task StartAsync(DesiredState state, IReadOnlyDictionary<string, string>? refused = null)
    {
        try
        {
            _starting = true;
            _refused = refused ?? new Dictionary<string, string>();
            foreach (var s in state.Subsystems) AddSubsystem(s);
            foreach (var l in state.Listeners) AddListener(l.Address);
            foreach (var v in state.Vhost) AddVhost(v);
            foreach (var h in state.HostDevices) await AttachHostDeviceAsync(h).ConfigureAwait(false);
        }
        catch
        {
            await ClearAsync().ConfigureAwait(false);
            throw;
        }
        finally
        {
            _starting = false;
            _refused = new Dictionary<string, string>();
        }
    }

    public async Task ApplyAsync(StateDiff diff)
    {
        var done = new List<EngineChange>();
        foreach (var change in diff.Changes)
        {
            try
            {
                await ApplyAsync(change).ConfigureAwait(false);
            }
            catch (Exception ex) when (IsRefusal(ex))
            {
                throw new EngineChangeException(ex, await UndoAsync(done).ConfigureAwait(false));
            }
            done.Add(change);
        }
    }

    private static bool IsRefusal(Exception ex) => ex is ManagementException or InvalidOperationException or IOException or ArgumentException;

    /// <summary>Undoes the steps done (last first); what could not be undone, for the message.</summary>
    private async Task<List<string>> UndoAsync(List<EngineChange> done)
    {
        var failures = new List<string>();
        for (int i = done.Count - 1; i >= 0; i--)
        {
            try
            {
                await ApplyAsync(done[i].Inverse()).ConfigureAwait(false);
            }
            catch (Exception ex) when (IsRefusal(ex))
            {
                _logger.LogError(ex, "undoing a step of a refused change failed");
                failures.Add(ex.Message);
            }
        }
        return failures;
    }

    private Task ApplyAsync(EngineChange change)
    {
        switch (change)
        {
            case ListenerAdded c: AddListener(c.Address); break;
            case ListenerRemoved c: return RemoveListenerAsync(c.Address);
            case SubsystemAdded c: AddSubsystem(c.Spec); break;
            case SubsystemRemoved c: RemoveSubsystem(c.Spec.Nqn); break;
            case HostAdded c: Find(c.Nqn).AllowHost(c.HostNqn); break;
            case HostAuthChanged c: Find(c.Nqn).SetHostAuthentication(c.HostNqn, c.Spec == null ? null : HostAuthentication(c.Spec)); break;
            case HostRemoved c: RemoveHost(c.Nqn, c.HostNqn); break;
            case AccessChanged c: SetAllowAnyHost(c.Nqn, c.AllowAnyHost); break;
            case NamespaceAdded c: AddNamespace(c.Nqn, c.Spec); break;
            case NamespaceRemoved c: RemoveNamespace(c.Nqn, c.Spec.Nsid); break;
            case VhostAdded c: AddVhost(c.Spec); break;
            case VhostRemoved c: return RemoveVhostAsync(c.Spec.Socket);
            case HostDeviceAdded c: return AttachHostDeviceAsync(c.Spec);
            case HostDeviceRemoved c: return DetachHostDeviceAsync(c.Spec.Volume);
            default: throw new ArgumentOutOfRangeException(nameof(change), change, "not a change this engine knows");
        }
        return Task.CompletedTask;
    }

    private void AddListener(string address)
    {
        string key = ConfigValidator.NormalizeAddress(address);
        if (_listeners.ContainsKey(key)) throw ManagementException.Conflict($"listener {key} already exists");
        var transport = new TcpTransport(_target, _transportLogger, _buffers) { BusyPoll = _busyPoll };
        try
        {
            transport.Start(IPEndPoint.Parse(key));
        }
        catch (InvalidOperationException ex)
        {
            throw ManagementException.Conflict($"{ex.Message} (is another daemon or program using the port? choose another port or stop it)");
        }
        _listeners[key] = transport;
    }

    private async Task RemoveListenerAsync(string address)
    {
        string key = ConfigValidator.NormalizeAddress(address);
        if (!_listeners.TryRemove(key, out var transport)) throw ManagementException.NotFound($"no listener {key}");
        await transport.DisposeAsync().ConfigureAwait(false);
        _logger.LogInformation("NVMe/TCP listener {Address} removed", key);
    }

    /// <summary>The validator has parsed every entry, so a failure here is a bug, not bad input.</summary>
    private static HostAuthentication HostAuthentication(HostAuthSpec spec) =>
        spec.ToTarget(out string problem) ?? throw new InvalidOperationException($"host_auth of {spec.HostNqn}: {problem}");

    private void AddSubsystem(SubsystemSpec spec)
    {
        if (_target.FindSubsystem(spec.Nqn) != null) throw ManagementException.Conflict($"subsystem {spec.Nqn} already exists");
        var subsystem = new Subsystem(spec.Nqn, allowAnyHost: spec.AllowAnyHost);
        foreach (string host in spec.Hosts) subsystem.AllowHost(host);
        foreach (var auth in spec.HostAuth) subsystem.SetHostAuthentication(auth.HostNqn, HostAuthentication(auth));
        var opened = new List<IBlockDevice>();
        try
        {
            foreach (var ns in spec.Namespaces)
            {
                IBlockDevice device;
                try
                {
                    device = OpenBackend(ns, StoragePolicy.NamespaceKey(spec.Nqn, ns.Nsid, ns.Backend));
                }
                catch (ManagementException ex) when (_starting && (IsVolume(ns) || _refused.ContainsKey(StoragePolicy.NamespaceKey(spec.Nqn, ns.Nsid, ns.Backend))))
                {
                    // A pool that did not open (or a volume gone), or the storage policy, refuses its namespaces, not the daemon.
                    _logger.LogError("subsystem {Nqn}: namespace {Nsid} ({Backend}) refused: {Message}", spec.Nqn, ns.Nsid, ns.Backend, ex.Message);
                    _dormant.Add((spec.Nqn, ns.Nsid));
                    continue;
                }
                opened.Add(device);
                subsystem.AddNamespace(new Namespace(ns.Nsid, device, ns.Uuid!.Value));
            }
        }
        catch
        {
            foreach (var d in opened) _teardown.Retire(d);
            throw;
        }
        _target.AddSubsystem(subsystem);
        _logger.LogInformation("subsystem {Nqn}: {Count} namespace(s), {Hosts}", spec.Nqn, spec.Namespaces.Count,
            spec.AllowAnyHost ? "any host may connect" : $"hosts: {(spec.Hosts.Count == 0 ? "(none yet)" : string.Join(", ", spec.Hosts))}");
    }

    private void RemoveSubsystem(string nqn)
    {
        var removed = _target.RemoveSubsystem(nqn) ?? throw ManagementException.NotFound($"no subsystem {nqn}");
        _dormant.RemoveWhere(d => d.Nqn == nqn);
        foreach (var ns in removed.Namespaces.Values) _teardown.Retire(nqn, ns);
        _logger.LogInformation("subsystem {Nqn} removed", nqn);
    }

    /// <summary>Turned off, the controllers of hosts not on the list are disconnected (as removing a host does).</summary>
    private void SetAllowAnyHost(string nqn, bool allowAny)
    {
        var subsystem = Find(nqn);
        subsystem.AllowAnyHost = allowAny;
        if (allowAny) return;
        foreach (var c in subsystem.Controllers)
            if (!subsystem.IsHostAllowed(c.HostNqn)) c.Destroy($"host {c.HostNqn} no longer allowed on {nqn} (allow_any_host turned off)");
    }

    private void RemoveHost(string nqn, string hostNqn)
    {
        var subsystem = Find(nqn);
        subsystem.DisallowHost(hostNqn);
        // A host no longer allowed loses its controllers (as nvmet does when the host link is removed).
        foreach (var c in subsystem.Controllers)
            if (c.HostNqn == hostNqn && !subsystem.IsHostAllowed(hostNqn)) c.Destroy($"host {hostNqn} removed from {nqn}");
    }

    private void AddNamespace(string nqn, NamespaceSpec spec)
    {
        var subsystem = Find(nqn);
        if (subsystem.FindNamespace(spec.Nsid) != null) throw ManagementException.Conflict($"subsystem {nqn} already has namespace {spec.Nsid}");
        var device = OpenBackend(spec, StoragePolicy.NamespaceKey(nqn, spec.Nsid, spec.Backend));
        var ns = new Namespace(spec.Nsid, device, spec.Uuid!.Value);
        try
        {
            subsystem.AddNamespace(ns);
        }
        catch (Exception ex) when (ex is InvalidOperationException or ArgumentException)
        {
            _teardown.Retire(device);
            throw ManagementException.Conflict(ex.Message);
        }
        _logger.LogInformation("subsystem {Nqn}: namespace {Nsid} = {Backend} ({Size})", nqn, spec.Nsid, spec.Backend,
            Sizes.Format(device.BlockCount * device.BlockSize));
    }

    private void RemoveNamespace(string nqn, uint nsid)
    {
        var ns = Find(nqn).RemoveNamespace(nsid);
        if (ns == null && _dormant.Remove((nqn, nsid)))
        {
            _logger.LogInformation("subsystem {Nqn}: namespace {Nsid} (not running: its backend was unavailable at start) removed", nqn, nsid);
            return;
        }
        if (ns == null) throw ManagementException.NotFound($"subsystem {nqn} has no namespace {nsid}");
        _teardown.Retire(nqn, ns);
        _logger.LogInformation("subsystem {Nqn}: namespace {Nsid} removed", nqn, nsid);
    }

    private Subsystem Find(string nqn) =>
        _target.FindSubsystem(nqn) is { IsDiscovery: false } s ? s : throw ManagementException.NotFound($"no subsystem {nqn}");

    private IBlockDevice OpenBackend(NamespaceSpec spec, string key)
    {
        if (_starting && _refused.TryGetValue(key, out string? why)) throw ManagementException.Invalid(why);
        if (!BackendSpec.TryParse(spec.Backend, out var backend, out string error)) throw ManagementException.Invalid($"backend: {error}");
        return backend.Kind == BackendKind.Volume ? VolumeBackends.Export(_pools, backend, spec.Uuid) : backend.Open(_dataDirectory);
    }

    private static bool IsVolume(NamespaceSpec spec) => BackendSpec.TryParse(spec.Backend, out var b, out _) && b.Kind == BackendKind.Volume;

    /// <summary>Stops every vhost export and listener (closing connections), then drains, flushes and closes every device.</summary>
    public async Task ClearAsync()
    {
        await ClearHostDevicesAsync().ConfigureAwait(false);
        await ClearVhostAsync().ConfigureAwait(false);
        foreach (var t in _listeners.Values) await t.DisposeAsync().ConfigureAwait(false);
        _listeners.Clear();
        foreach (var s in _target.Subsystems.ToList())
        {
            _target.RemoveSubsystem(s.NqnName);
            foreach (var ns in s.Namespaces.Values) _teardown.Retire(s.NqnName, ns);
        }
        await _teardown.WhenClosedAsync().ConfigureAwait(false);
        _dormant.Clear();
    }

    public async ValueTask DisposeAsync() => await ClearAsync().ConfigureAwait(false);
}
