using System.Collections.Concurrent;
using System.Net;
using EdgeBlock.Daemon.Pools;
using EdgeBlock.Storage;
using EdgeBlock.Target;
using EdgeBlock.Transports.Tcp;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Daemon.Management;

/// <summary>
/// Makes the live <see cref="NvmeTarget"/> match the desired state: one step per change (add or
/// remove a listener, subsystem, host or namespace). Each step either completes or throws
/// <see cref="ManagementException"/> having changed nothing. Not thread-safe: the caller serializes.
/// </summary>
public sealed partial class Reconciler : IAsyncDisposable
{
    private static readonly TimeSpan RetireDelay = TimeSpan.FromSeconds(2);
    private readonly NvmeTarget _target;
    private readonly string _dataDirectory;
    private readonly ILogger _logger;
    private readonly ILogger _transportLogger;
    private readonly ConcurrentDictionary<string, TcpTransport> _listeners = new(StringComparer.Ordinal); // read by status calls outside the change lock
    private readonly List<Task> _retiring = [];
    private readonly PoolManager? _pools;
    // Volume namespaces whose pool or volume was unavailable at start: in the desired state, not live.
    private readonly HashSet<(string Nqn, uint Nsid)> _dormant = [];
    private bool _starting;
    // --engine kernel: every step goes to the Linux kernel target instead (no listener, no device opened here).
    private readonly KernelEngine.KernelTarget? _kernel;

    public Reconciler(NvmeTarget target, string dataDirectory, ILogger logger, ILogger transportLogger, PoolManager? pools = null,
        KernelEngine.KernelTarget? kernel = null)
    {
        _target = target;
        _dataDirectory = dataDirectory;
        _logger = logger;
        _transportLogger = transportLogger;
        _pools = pools;
        _kernel = kernel;
    }

    /// <summary>The kernel engine, when the daemon runs with --engine kernel.</summary>
    public KernelEngine.KernelTarget? Kernel => _kernel;

    /// <summary>Listeners by configured address, with the transport (its bound endpoint has the real port when 0 was asked for).</summary>
    public IReadOnlyDictionary<string, TcpTransport> Listeners => _listeners;

    /// <summary>The transport of a configured address, or null.</summary>
    public TcpTransport? FindListener(string address) =>
        ConfigValidator.TryParseEndPoint(address, out var ep, out _) ? _listeners.GetValueOrDefault(ep.ToString()) : null;

    /// <summary>Applies a whole (validated) state on an empty target; on failure undoes what it did and rethrows.</summary>
    public async Task ApplyAsync(DesiredState state)
    {
        if (_kernel != null)
        {
            _kernel.Apply(state);
            foreach (var v in state.Vhost)
                _logger.LogError("vhost export {Socket} not served: vhost-user needs EdgeBlock's own engine (this daemon runs --engine kernel)", v.Socket);
            return;
        }
        try
        {
            _starting = true;
            foreach (var s in state.Subsystems) AddSubsystem(s);
            foreach (var l in state.Listeners) AddListener(l.Address);
            foreach (var v in state.Vhost) AddVhost(v);
        }
        catch
        {
            await ClearAsync().ConfigureAwait(false);
            throw;
        }
        finally
        {
            _starting = false;
        }
    }

    public static string Normalize(string address) =>
        ConfigValidator.TryParseEndPoint(address, out var ep, out string why) ? ep.ToString()
            : throw ManagementException.Invalid($"listener address '{address}' {why}");

    public void AddListener(string address)
    {
        if (_kernel != null) { _kernel.AddListener(address); return; }
        string key = Normalize(address);
        if (_listeners.ContainsKey(key)) throw ManagementException.Conflict($"listener {key} already exists");
        var transport = new TcpTransport(_target, _transportLogger);
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

    public async Task RemoveListenerAsync(string address)
    {
        if (_kernel != null) { _kernel.RemoveListener(address); return; }
        string key = Normalize(address);
        if (!_listeners.TryRemove(key, out var transport)) throw ManagementException.NotFound($"no listener {key}");
        await transport.DisposeAsync().ConfigureAwait(false);
        _logger.LogInformation("NVMe/TCP listener {Address} removed", key);
    }

    public void AddSubsystem(SubsystemSpec spec)
    {
        if (_kernel != null) { _kernel.AddSubsystem(spec); return; }
        if (_target.FindSubsystem(spec.Nqn) != null) throw ManagementException.Conflict($"subsystem {spec.Nqn} already exists");
        var subsystem = new Subsystem(spec.Nqn, allowAnyHost: spec.AllowAnyHost);
        foreach (string host in spec.Hosts) subsystem.AllowHost(host);
        var opened = new List<IBlockDevice>();
        try
        {
            foreach (var ns in spec.Namespaces)
            {
                IBlockDevice device;
                try
                {
                    device = OpenBackend(ns);
                }
                catch (ManagementException ex) when (_starting && IsVolume(ns))
                {
                    // A pool that did not open (or a volume gone) refuses its namespaces, not the daemon.
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
            foreach (var d in opened) Retire(d, TimeSpan.Zero);
            throw;
        }
        _target.AddSubsystem(subsystem);
        _logger.LogInformation("subsystem {Nqn}: {Count} namespace(s), {Hosts}", spec.Nqn, spec.Namespaces.Count,
            spec.AllowAnyHost ? "any host may connect" : $"hosts: {(spec.Hosts.Count == 0 ? "(none yet)" : string.Join(", ", spec.Hosts))}");
    }

    public void RemoveSubsystem(string nqn)
    {
        if (_kernel != null) { _kernel.RemoveSubsystem(nqn); return; }
        var removed = _target.RemoveSubsystem(nqn) ?? throw ManagementException.NotFound($"no subsystem {nqn}");
        _dormant.RemoveWhere(d => d.Nqn == nqn);
        foreach (var ns in removed.Namespaces.Values) Retire(ns.Device, RetireDelay);
        _logger.LogInformation("subsystem {Nqn} removed", nqn);
    }

    public void SetAllowAnyHost(string nqn, bool allowAny)
    {
        if (_kernel != null) { _kernel.SetAllowAnyHost(nqn, allowAny); return; }
        Find(nqn).AllowAnyHost = allowAny;
    }

    public void AddHost(string nqn, string hostNqn)
    {
        if (_kernel != null) { _kernel.AddHost(nqn, hostNqn); return; }
        Find(nqn).AllowHost(hostNqn);
    }

    public void RemoveHost(string nqn, string hostNqn)
    {
        if (_kernel != null) { _kernel.RemoveHost(nqn, hostNqn); return; }
        var subsystem = Find(nqn);
        subsystem.DisallowHost(hostNqn);
        // A host no longer allowed loses its controllers (as nvmet does when the host link is removed).
        foreach (var c in subsystem.Controllers)
            if (c.HostNqn == hostNqn && !subsystem.IsHostAllowed(hostNqn)) c.Destroy($"host {hostNqn} removed from {nqn}");
    }

    /// <summary>The live namespace (null with the kernel engine: the kernel serves it).</summary>
    public Namespace? AddNamespace(string nqn, NamespaceSpec spec)
    {
        if (_kernel != null) { _kernel.AddNamespace(nqn, spec); return null; }
        var subsystem = Find(nqn);
        if (subsystem.FindNamespace(spec.Nsid) != null) throw ManagementException.Conflict($"subsystem {nqn} already has namespace {spec.Nsid}");
        var device = OpenBackend(spec);
        var ns = new Namespace(spec.Nsid, device, spec.Uuid!.Value);
        try
        {
            subsystem.AddNamespace(ns);
        }
        catch (Exception ex) when (ex is InvalidOperationException or ArgumentException)
        {
            Retire(device, TimeSpan.Zero);
            throw ManagementException.Conflict(ex.Message);
        }
        _logger.LogInformation("subsystem {Nqn}: namespace {Nsid} = {Backend} ({Size})", nqn, spec.Nsid, spec.Backend,
            Sizes.Format(device.BlockCount * device.BlockSize));
        return ns;
    }

    public void RemoveNamespace(string nqn, uint nsid)
    {
        if (_kernel != null) { _kernel.RemoveNamespace(nqn, nsid); return; }
        var ns = Find(nqn).RemoveNamespace(nsid);
        if (ns == null && _dormant.Remove((nqn, nsid)))
        {
            _logger.LogInformation("subsystem {Nqn}: namespace {Nsid} (not running: its volume was unavailable) removed", nqn, nsid);
            return;
        }
        if (ns == null) throw ManagementException.NotFound($"subsystem {nqn} has no namespace {nsid}");
        Retire(ns.Device, RetireDelay);
        _logger.LogInformation("subsystem {Nqn}: namespace {Nsid} removed", nqn, nsid);
    }

    private Subsystem Find(string nqn) =>
        _target.FindSubsystem(nqn) is { IsDiscovery: false } s ? s : throw ManagementException.NotFound($"no subsystem {nqn}");

    private IBlockDevice OpenBackend(NamespaceSpec spec)
    {
        if (!BackendSpec.TryParse(spec.Backend, out var backend, out string error)) throw ManagementException.Invalid($"backend: {error}");
        if (backend.Kind != BackendKind.Volume) return backend.Open(_dataDirectory);
        if (_pools == null) throw ManagementException.Invalid($"backend {backend}: this daemon has no pools");
        try
        {
            return _pools.Export(backend.PoolName, backend.VolumeName, spec.Uuid);
        }
        catch (EdgeBlock.Volumes.VolumeException ex)
        {
            throw PoolManager.Refusal(ex);
        }
    }

    private static bool IsVolume(NamespaceSpec spec) => BackendSpec.TryParse(spec.Backend, out var b, out _) && b.Kind == BackendKind.Volume;

    /// <summary>The UUID of a new namespace: a volume's own (stable per volume), else a new one. Refuses an unknown pool or volume.</summary>
    public Guid NewNamespaceUuid(BackendSpec backend)
    {
        if (backend.Kind != BackendKind.Volume) return Guid.NewGuid();
        if (_pools == null) throw ManagementException.Invalid($"backend {backend}: this daemon has no pools");
        try
        {
            return _pools.VolumeUuid(backend.PoolName, backend.VolumeName);
        }
        catch (EdgeBlock.Volumes.VolumeException ex)
        {
            throw PoolManager.Refusal(ex);
        }
    }

    /// <summary>
    /// Flushes and closes a device no namespace uses any more. Commands already routed to it may
    /// still be running, so the close waits a moment (they finish in far less).
    /// </summary>
    private void Retire(IBlockDevice device, TimeSpan delay)
    {
        if (device is VolumeExport export) export.Detached = true; // no namespace routes to it any more

        _retiring.RemoveAll(t => t.IsCompleted);
        _retiring.Add(RetireAsync(device, delay));
    }

    private async Task RetireAsync(IBlockDevice device, TimeSpan delay)
    {
        try
        {
            var status = await device.FlushAsync().ConfigureAwait(false);
            if (status != BlockStatus.Success) _logger.LogError("flush of a removed namespace failed: {Status}", status);
            if (delay > TimeSpan.Zero) await Task.Delay(delay).ConfigureAwait(false);
        }
        finally
        {
            await device.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Stops every vhost export and listener (closing connections), then flushes and closes every device.</summary>
    public async Task ClearAsync()
    {
        await ClearVhostAsync().ConfigureAwait(false);
        foreach (var t in _listeners.Values) await t.DisposeAsync().ConfigureAwait(false);
        _listeners.Clear();
        foreach (var s in _target.Subsystems.ToList())
        {
            _target.RemoveSubsystem(s.NqnName);
            foreach (var ns in s.Namespaces.Values) Retire(ns.Device, TimeSpan.Zero);
        }
        await Task.WhenAll(_retiring).ConfigureAwait(false);
        _retiring.Clear();
        _dormant.Clear();
    }

    public async ValueTask DisposeAsync() => await ClearAsync().ConfigureAwait(false);
}
