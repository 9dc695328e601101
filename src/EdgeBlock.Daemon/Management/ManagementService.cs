using System.Diagnostics;
using System.Runtime.ExceptionServices;
using EdgeBlock.Daemon.Pools;
using EdgeBlock.Nvme;
using EdgeBlock.Target;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Daemon.Management;

/// <summary>
/// The management plane's one entry point: every change is checked against a copy of the desired
/// state, validated as a whole, handed to the engine that serves it (<see cref="ITargetEngine"/>) as the
/// diff from the running state, then persisted atomically. A refused change leaves both the running state
/// and the file as they were.
/// </summary>
public sealed partial class ManagementService
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly NvmeTarget _target;
    private readonly ITargetEngine _engine;
    private readonly PoolManager? _pools;
    private readonly ConfigStore _store;
    private readonly string _dataDirectory;
    private readonly ILogger _logger;
    private readonly StoragePolicy _policy;
    private readonly Stopwatch _uptime = Stopwatch.StartNew();
    private DesiredState _desired = new();

    public ManagementService(NvmeTarget target, ITargetEngine engine, ConfigStore store, string dataDirectory, ILogger logger, PoolManager? pools = null,
        StoragePolicy? policy = null)
    {
        _target = target;
        _engine = engine;
        _pools = pools;
        _store = store;
        _dataDirectory = dataDirectory;
        _logger = logger;
        _policy = policy ?? new StoragePolicy(dataDirectory, store.Path, pools: pools);
        // New pool drives obey the same policy, against the exports of the state in force.
        if (pools != null) pools.DrivePolicy = (path, force) => _policy.CheckPoolDrive(path, force, _desired);
        if (pools != null) pools.VolumeDeleted = DropVolumeQosAsync;
        if (pools != null) pools.Images.FilePolicy = (path, create) => _policy.CheckImageFile(path, create, _desired);
        if (pools != null) pools.CephFilePolicy = (what, path) => _policy.CheckCephFile(what, path, _desired);
    }

    public string ConfigPath => _store.Path;
    public string? ApiSocket { get; set; }
    /// <summary>The data buffers under the memory budget, for status (null: not reported).</summary>
    public Storage.DataBufferPool? Buffers { get; init; }

    /// <summary>A copy of the desired state as last persisted.</summary>
    public DesiredState Desired => _desired.Clone();

    /// <summary>Validates and applies a whole state at start; persists it when <paramref name="persist"/>.</summary>
    public async Task StartAsync(DesiredState state, bool persist)
    {
        var errors = ConfigValidator.Validate(state, _dataDirectory);
        if (errors.Count > 0)
            throw ManagementException.Invalid($"config {_store.Path} is invalid: {string.Join("; ", errors)}");
        // What the storage policy refuses is left out (as a volume whose pool did not open is), not the daemon.
        await _engine.StartAsync(state, _policy.Refusals(state)).ConfigureAwait(false);
        if (persist) _store.Save(state);
        PutQosInForce(state, starting: true);
        _desired = state;
    }

    // ---- reads -----------------------------------------------------------------

    public StatusInfo Status()
    {
        var subsystems = _target.Subsystems;
        return new StatusInfo(
            typeof(ManagementService).Assembly.GetName().Version?.ToString() ?? "0",
            Environment.ProcessId, (long)_uptime.Elapsed.TotalSeconds, _dataDirectory, _store.Path, ApiSocket,
            _engine.ListenerCount, subsystems.Count, subsystems.Sum(s => s.Namespaces.Count),
            _target.Controllers.Count(c => !c.IsDiscovery),
            Buffers is { } b ? new MemoryInfo(b.BudgetBytes, b.InUseBytes, b.MappedBytes, b.PeakInUseBytes, b.Waits) : null);
    }

    public IReadOnlyList<ListenerInfo> Listeners() =>
        _desired.Listeners.Select(l =>
        {
            var listener = _engine.Listener(l.Address);
            return new ListenerInfo(l.Address, listener?.Bound?.ToString(), listener?.Connections ?? 0);
        }).ToList();

    public IReadOnlyList<SubsystemInfo> Subsystems() => _desired.Subsystems.Select(Describe).ToList();

    public SubsystemInfo Subsystem(string nqn) => Describe(FindSpec(_desired, nqn));

    public IReadOnlyList<NamespaceInfo> Namespaces(string nqn) => Describe(FindSpec(_desired, nqn)).Namespaces;

    public IReadOnlyList<HostInfo> Hosts() =>
        _target.Controllers.OrderBy(c => c.Cntlid).Select(c =>
        {
            var queues = c.Queues;
            return new HostInfo(c.Cntlid, c.HostNqn, c.Subsystem.NqnName, queues.Count,
                queues.FirstOrDefault()?.Transport.RemoteEndpoint, c.CreatedAt);
        }).ToList();

    private SubsystemInfo Describe(SubsystemSpec spec)
    {
        var live = _target.FindSubsystem(spec.Nqn);
        var namespaces = spec.Namespaces.OrderBy(n => n.Nsid).Select(n =>
        {
            var ns = live?.FindNamespace(n.Nsid);
            return new NamespaceInfo(n.Nsid, n.Backend, n.Uuid ?? Guid.Empty, ns == null ? 0 : ns.BlockCount * ns.BlockSize, ns?.BlockSize ?? 0);
        }).ToList();
        return new SubsystemInfo(spec.Nqn, spec.AllowAnyHost, spec.Hosts.ToList(), namespaces, live?.Controllers.Count ?? 0,
            spec.HostAuth.Select(a => new HostAuthInfo(a.HostNqn, a.DhchapSecret.Length > 0, a.DhchapCtrlSecret != null, a.DhchapHash ?? "sha256", a.DhchapDhgroup ?? "null")).ToList());
    }

    // ---- changes ---------------------------------------------------------------

    public Task<ListenerInfo> AddListenerAsync(AddListenerRequest request)
    {
        string key = "";
        return ChangeAsync(state =>
        {
            key = ConfigValidator.NormalizeAddress(request.Address ?? "");
            if (state.Listeners.Any(l => ConfigValidator.NormalizeAddress(l.Address) == key)) throw ManagementException.Conflict($"listener {key} already exists");
            state.Listeners.Add(new ListenerSpec { Address = key });
        }, undoable: true, result: () => Listeners().First(l => l.Address == key));
    }

    public Task RemoveListenerAsync(string address) => ChangeAsync<object?>(state =>
    {
        string key = ConfigValidator.NormalizeAddress(address);
        if (state.Listeners.RemoveAll(l => ConfigValidator.NormalizeAddress(l.Address) == key) == 0) throw ManagementException.NotFound($"no listener {key}");
    }, undoable: true, result: () => null);

    public Task<SubsystemInfo> CreateSubsystemAsync(CreateSubsystemRequest request)
    {
        string nqn = request.Nqn ?? "";
        return ChangeAsync(state =>
        {
            if (!Nqn.IsValid(nqn, out string why)) throw ManagementException.Invalid($"'{nqn}' is not a valid NQN: {why}");
            if (state.FindSubsystem(nqn) != null || nqn == Nqn.Discovery) throw ManagementException.Conflict($"subsystem {nqn} already exists");
            state.Subsystems.Add(new SubsystemSpec { Nqn = nqn, AllowAnyHost = request.AllowAnyHost, Hosts = request.Hosts?.Distinct().ToList() ?? [] });
        }, undoable: true, result: () => Subsystem(nqn));
    }

    public Task DeleteSubsystemAsync(string nqn) => ChangeAsync<object?>(state => state.Subsystems.Remove(FindSpec(state, nqn)),
        undoable: false, result: () => null);

    public Task<SubsystemInfo> AddHostAsync(string nqn, AddHostRequest request) => ChangeAsync(state =>
    {
        var spec = FindSpec(state, nqn);
        string host = request.HostNqn ?? "";
        if (!Nqn.IsValid(host, out string why)) throw ManagementException.Invalid($"'{host}' is not a valid host NQN: {why}");
        if (spec.Hosts.Contains(host)) throw ManagementException.Conflict($"host {host} is already allowed on {nqn}");
        spec.Hosts.Add(host);
        if (request.Dhchap != null) SetHostAuth(spec, host, request.Dhchap);
    }, undoable: true, result: () => Subsystem(nqn));

    /// <summary>Sets (or with null, removes) a listed host's DH-HMAC-CHAP secrets; a bad secret is refused naming the problem, never echoing it.</summary>
    public Task<SubsystemInfo> SetHostAuthAsync(string nqn, string hostNqn, SetHostAuthRequest? request) => ChangeAsync(state =>
    {
        var spec = FindSpec(state, nqn);
        if (!spec.Hosts.Contains(hostNqn)) throw ManagementException.NotFound($"host {hostNqn} is not on the list of {nqn} (edgeblock subsystem add-host first)");
        if (request == null)
        {
            if (spec.HostAuth.RemoveAll(a => a.HostNqn == hostNqn) == 0) throw ManagementException.NotFound($"host {hostNqn} on {nqn} has no DH-HMAC-CHAP secret");
            return;
        }
        SetHostAuth(spec, hostNqn, request);
    }, undoable: true, result: () => Subsystem(nqn));

    private static void SetHostAuth(SubsystemSpec spec, string hostNqn, SetHostAuthRequest request)
    {
        var auth = new HostAuthSpec
        {
            HostNqn = hostNqn,
            DhchapSecret = request.DhchapSecret ?? "",
            DhchapCtrlSecret = string.IsNullOrWhiteSpace(request.DhchapCtrlSecret) ? null : request.DhchapCtrlSecret.Trim(),
            DhchapHash = request.DhchapHash,
            DhchapDhgroup = request.DhchapDhgroup,
        };
        auth.DhchapSecret = auth.DhchapSecret.Trim();
        if (auth.ToTarget(out string problem) == null) throw ManagementException.Invalid($"host {hostNqn}: {problem}");
        spec.HostAuth.RemoveAll(a => a.HostNqn == hostNqn);
        spec.HostAuth.Add(auth);
    }

    public Task<SubsystemInfo> RemoveHostAsync(string nqn, string hostNqn) => ChangeAsync(state =>
    {
        var spec = FindSpec(state, nqn);
        if (!spec.Hosts.Remove(hostNqn)) throw ManagementException.NotFound($"host {hostNqn} is not on the list of {nqn}");
        spec.HostAuth.RemoveAll(a => a.HostNqn == hostNqn);
    }, undoable: true, result: () => Subsystem(nqn));

    public Task<NamespaceInfo> AddNamespaceAsync(string nqn, AddNamespaceRequest request)
    {
        uint nsid = 0;
        return ChangeAsync(state =>
        {
            var spec = FindSpec(state, nqn);
            if (!BackendSpec.TryParse(request.Backend, out var backend, out string error)) throw ManagementException.Invalid($"backend {error}");
            if (!backend.TryCheck(_dataDirectory, out error)) throw ManagementException.Invalid($"backend '{request.Backend}': {error}");
            nsid = request.Nsid ?? NextFreeNsid(spec);
            if (nsid is 0 or > Target.Subsystem.MaxNsid) throw ManagementException.Invalid($"nsid {nsid} is out of range (1..{Target.Subsystem.MaxNsid})");
            if (spec.Namespaces.Any(n => n.Nsid == nsid)) throw ManagementException.Conflict($"subsystem {nqn} already has namespace {nsid}");
            if (backend.Kind == BackendKind.File)
            {
                string full = backend.FullPath(_dataDirectory);
                var user = state.Subsystems.SelectMany(s => s.Namespaces.Select(n => (s.Nqn, n)))
                    .FirstOrDefault(x => BackendSpec.TryParse(x.n.Backend, out var b, out _) && b.Kind == BackendKind.File && b.FullPath(_dataDirectory) == full);
                if (user.n != null) throw ManagementException.Conflict($"{full} already backs namespace {user.n.Nsid} of {user.Nqn}");
            }
            spec.Namespaces.Add(new NamespaceSpec { Nsid = nsid, Backend = backend.ToString(), Uuid = request.Uuid ?? VolumeBackends.NewNamespaceUuid(_pools, backend) });
        }, undoable: true, result: () => Namespaces(nqn).First(n => n.Nsid == nsid), force: request.Force);
    }

    public Task RemoveNamespaceAsync(string nqn, uint nsid) => ChangeAsync<object?>(state =>
    {
        var spec = FindSpec(state, nqn);
        if (spec.Namespaces.RemoveAll(n => n.Nsid == nsid) == 0) throw ManagementException.NotFound($"subsystem {nqn} has no namespace {nsid}");
    }, undoable: false, result: () => null);

    private static uint NextFreeNsid(SubsystemSpec spec)
    {
        for (uint nsid = 1; nsid <= Target.Subsystem.MaxNsid; nsid++)
            if (spec.Namespaces.All(n => n.Nsid != nsid)) return nsid;
        throw ManagementException.Conflict($"subsystem {spec.Nqn} has no free NSID");
    }

    private static SubsystemSpec FindSpec(DesiredState state, string nqn) =>
        state.FindSubsystem(nqn) ?? throw ManagementException.NotFound($"no subsystem {nqn} (see `edgeblock subsystem list`)");

    /// <summary>
    /// One change: <paramref name="edit"/> edits a copy of the desired state (throwing to refuse); the whole new
    /// state is validated, the engine takes the diff, the file is written. If writing fails the change is
    /// undone when <paramref name="undoable"/> (removals are not: their devices are closing) and the error reported.
    /// <paramref name="force"/>: the storage policy lets a block device with a signature be exported.
    /// </summary>
    private async Task<T> ChangeAsync<T>(Action<DesiredState> edit, bool undoable, Func<T> result, bool force = false)
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            var candidate = _desired.Clone();
            edit(candidate);
            var errors = ConfigValidator.Validate(candidate, _dataDirectory);
            CheckQosNames(candidate, errors);
            if (errors.Count > 0) throw ManagementException.Invalid(string.Join("; ", errors));
            EnforcePolicy(candidate, checkContents: !force, "");
            var diff = StateDiff.Between(_desired, candidate, _dataDirectory);
            await ApplyOrThrowCauseAsync(diff).ConfigureAwait(false);
            try
            {
                _store.Save(candidate);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                if (undoable) await ApplyOrThrowCauseAsync(diff.Inverse()).ConfigureAwait(false);
                _logger.LogError(ex, "cannot write {Path}", _store.Path);
                throw new ManagementException(500, "cannot save the configuration",
                    $"the change was {(undoable ? "undone" : "applied but not saved")}: writing {_store.Path} failed: {ex.Message}");
            }
            PutQosInForce(candidate);
            _desired = candidate;
            return result();
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// The storage policy's verdict on what <paramref name="candidate"/> adds to the running state: each refusal
    /// names the path and the rule; 409 when every one is a path in use, else 400.
    /// </summary>
    private void EnforcePolicy(DesiredState candidate, bool checkContents, string prefix)
    {
        var refusals = _policy.Check(candidate, _desired, checkContents);
        if (refusals.Count == 0) return;
        string message = prefix + string.Join("; ", refusals.Select(r => r.Message));
        throw refusals.All(r => r.InUse) ? ManagementException.Conflict(message) : ManagementException.Invalid(message);
    }

    /// <summary>One API change is one step: a refusal is reported as the engine's own exception.</summary>
    private async Task ApplyOrThrowCauseAsync(StateDiff diff)
    {
        try
        {
            await _engine.ApplyAsync(diff).ConfigureAwait(false);
        }
        catch (EngineChangeException ex)
        {
            ExceptionDispatchInfo.Capture(ex.Cause).Throw();
        }
    }
}
