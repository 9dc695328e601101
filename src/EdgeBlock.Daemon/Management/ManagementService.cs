using System.Diagnostics;
using EdgeBlock.Nvme;
using EdgeBlock.Target;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Daemon.Management;

/// <summary>
/// The management plane's one entry point: every change is checked against a copy of the desired
/// state, validated as a whole, applied to the live target by the <see cref="Reconciler"/>, then
/// persisted atomically. A refused change leaves both the running state and the file as they were.
/// </summary>
public sealed partial class ManagementService
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly NvmeTarget _target;
    private readonly Reconciler _reconciler;
    private readonly ConfigStore _store;
    private readonly string _dataDirectory;
    private readonly ILogger _logger;
    private readonly Stopwatch _uptime = Stopwatch.StartNew();
    private DesiredState _desired = new();

    public ManagementService(NvmeTarget target, Reconciler reconciler, ConfigStore store, string dataDirectory, ILogger logger)
    {
        _target = target;
        _reconciler = reconciler;
        _store = store;
        _dataDirectory = dataDirectory;
        _logger = logger;
    }

    public string ConfigPath => _store.Path;
    public string? ApiSocket { get; set; }

    /// <summary>A copy of the desired state as last persisted.</summary>
    public DesiredState Desired => _desired.Clone();

    /// <summary>Validates and applies a whole state at start; persists it when <paramref name="persist"/>.</summary>
    public async Task StartAsync(DesiredState state, bool persist)
    {
        var errors = ConfigValidator.Validate(state, _dataDirectory);
        if (errors.Count > 0)
            throw ManagementException.Invalid($"config {_store.Path} is invalid: {string.Join("; ", errors)}");
        await _reconciler.ApplyAsync(state).ConfigureAwait(false);
        if (persist) _store.Save(state);
        _desired = state;
    }

    // ---- reads -----------------------------------------------------------------

    public StatusInfo Status()
    {
        var subsystems = _target.Subsystems;
        return new StatusInfo(
            typeof(ManagementService).Assembly.GetName().Version?.ToString() ?? "0",
            Environment.ProcessId, (long)_uptime.Elapsed.TotalSeconds, _dataDirectory, _store.Path, ApiSocket,
            _reconciler.Listeners.Count, subsystems.Count, subsystems.Sum(s => s.Namespaces.Count),
            _target.Controllers.Count(c => !c.IsDiscovery));
    }

    public IReadOnlyList<ListenerInfo> Listeners() =>
        _desired.Listeners.Select(l =>
        {
            var transport = _reconciler.Listeners.GetValueOrDefault(Reconciler.Normalize(l.Address));
            return new ListenerInfo(l.Address, transport?.LocalEndPoint?.ToString(), transport?.ConnectionCount ?? 0);
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
        return new SubsystemInfo(spec.Nqn, spec.AllowAnyHost, spec.Hosts.ToList(), namespaces, live?.Controllers.Count ?? 0);
    }

    // ---- changes ---------------------------------------------------------------

    public Task<ListenerInfo> AddListenerAsync(AddListenerRequest request) => ChangeAsync(state =>
    {
        string key = Reconciler.Normalize(request.Address ?? "");
        if (state.Listeners.Any(l => Reconciler.Normalize(l.Address) == key)) throw ManagementException.Conflict($"listener {key} already exists");
        state.Listeners.Add(new ListenerSpec { Address = key });
        return Task.FromResult<Func<Task>>(() =>
        {
            _reconciler.AddListener(key);
            return Task.CompletedTask;
        });
    }, undo: () => _reconciler.RemoveListenerAsync(request.Address!), result: () => Listeners().First(l => l.Address == Reconciler.Normalize(request.Address!)));

    public Task RemoveListenerAsync(string address) => ChangeAsync<object?>(state =>
    {
        string key = Reconciler.Normalize(address);
        if (state.Listeners.RemoveAll(l => Reconciler.Normalize(l.Address) == key) == 0) throw ManagementException.NotFound($"no listener {key}");
        return Task.FromResult<Func<Task>>(() => _reconciler.RemoveListenerAsync(key));
    }, undo: () => { _reconciler.AddListener(address); return Task.CompletedTask; }, result: () => null);

    public Task<SubsystemInfo> CreateSubsystemAsync(CreateSubsystemRequest request)
    {
        SubsystemSpec? spec = null;
        return ChangeAsync(state =>
        {
            string nqn = request.Nqn ?? "";
            if (!Nqn.IsValid(nqn, out string why)) throw ManagementException.Invalid($"'{nqn}' is not a valid NQN: {why}");
            if (state.FindSubsystem(nqn) != null || nqn == Nqn.Discovery) throw ManagementException.Conflict($"subsystem {nqn} already exists");
            spec = new SubsystemSpec { Nqn = nqn, AllowAnyHost = request.AllowAnyHost, Hosts = request.Hosts?.Distinct().ToList() ?? [] };
            state.Subsystems.Add(spec);
            return Task.FromResult<Func<Task>>(() => { _reconciler.AddSubsystem(spec); return Task.CompletedTask; });
        }, undo: () => { _reconciler.RemoveSubsystem(spec!.Nqn); return Task.CompletedTask; }, result: () => Subsystem(spec!.Nqn));
    }

    public Task DeleteSubsystemAsync(string nqn) => ChangeAsync<object?>(state =>
    {
        var spec = FindSpec(state, nqn);
        state.Subsystems.Remove(spec);
        return Task.FromResult<Func<Task>>(() => { _reconciler.RemoveSubsystem(nqn); return Task.CompletedTask; });
    }, undo: null, result: () => null);

    public Task<SubsystemInfo> AddHostAsync(string nqn, AddHostRequest request) => ChangeAsync(state =>
    {
        var spec = FindSpec(state, nqn);
        string host = request.HostNqn ?? "";
        if (!Nqn.IsValid(host, out string why)) throw ManagementException.Invalid($"'{host}' is not a valid host NQN: {why}");
        if (spec.Hosts.Contains(host)) throw ManagementException.Conflict($"host {host} is already allowed on {nqn}");
        spec.Hosts.Add(host);
        return Task.FromResult<Func<Task>>(() => { _reconciler.AddHost(nqn, host); return Task.CompletedTask; });
    }, undo: () => { _reconciler.RemoveHost(nqn, request.HostNqn); return Task.CompletedTask; }, result: () => Subsystem(nqn));

    public Task<SubsystemInfo> RemoveHostAsync(string nqn, string hostNqn) => ChangeAsync(state =>
    {
        var spec = FindSpec(state, nqn);
        if (!spec.Hosts.Remove(hostNqn)) throw ManagementException.NotFound($"host {hostNqn} is not on the list of {nqn}");
        return Task.FromResult<Func<Task>>(() => { _reconciler.RemoveHost(nqn, hostNqn); return Task.CompletedTask; });
    }, undo: () => { _reconciler.AddHost(nqn, hostNqn); return Task.CompletedTask; }, result: () => Subsystem(nqn));

    public Task<NamespaceInfo> AddNamespaceAsync(string nqn, AddNamespaceRequest request)
    {
        NamespaceSpec? ns = null;
        return ChangeAsync(state =>
        {
            var spec = FindSpec(state, nqn);
            if (!BackendSpec.TryParse(request.Backend, out var backend, out string error)) throw ManagementException.Invalid($"backend {error}");
            if (!backend.TryCheck(_dataDirectory, out error)) throw ManagementException.Invalid($"backend '{request.Backend}': {error}");
            uint nsid = request.Nsid ?? NextFreeNsid(spec);
            if (nsid is 0 or > Target.Subsystem.MaxNsid) throw ManagementException.Invalid($"nsid {nsid} is out of range (1..{Target.Subsystem.MaxNsid})");
            if (spec.Namespaces.Any(n => n.Nsid == nsid)) throw ManagementException.Conflict($"subsystem {nqn} already has namespace {nsid}");
            if (backend.Kind == BackendKind.File)
            {
                string full = backend.FullPath(_dataDirectory);
                var user = state.Subsystems.SelectMany(s => s.Namespaces.Select(n => (s.Nqn, n)))
                    .FirstOrDefault(x => BackendSpec.TryParse(x.n.Backend, out var b, out _) && b.Kind == BackendKind.File && b.FullPath(_dataDirectory) == full);
                if (user.n != null) throw ManagementException.Conflict($"{full} already backs namespace {user.n.Nsid} of {user.Nqn}");
            }
            ns = new NamespaceSpec { Nsid = nsid, Backend = backend.ToString(), Uuid = request.Uuid ?? _reconciler.NewNamespaceUuid(backend) };
            spec.Namespaces.Add(ns);
            return Task.FromResult<Func<Task>>(() => { _reconciler.AddNamespace(nqn, ns); return Task.CompletedTask; });
        }, undo: () => { _reconciler.RemoveNamespace(nqn, ns!.Nsid); return Task.CompletedTask; },
           result: () => Namespaces(nqn).First(n => n.Nsid == ns!.Nsid));
    }

    public Task RemoveNamespaceAsync(string nqn, uint nsid) => ChangeAsync<object?>(state =>
    {
        var spec = FindSpec(state, nqn);
        if (spec.Namespaces.RemoveAll(n => n.Nsid == nsid) == 0) throw ManagementException.NotFound($"subsystem {nqn} has no namespace {nsid}");
        return Task.FromResult<Func<Task>>(() => { _reconciler.RemoveNamespace(nqn, nsid); return Task.CompletedTask; });
    }, undo: null, result: () => null);

    private static uint NextFreeNsid(SubsystemSpec spec)
    {
        for (uint nsid = 1; nsid <= Target.Subsystem.MaxNsid; nsid++)
            if (spec.Namespaces.All(n => n.Nsid != nsid)) return nsid;
        throw ManagementException.Conflict($"subsystem {spec.Nqn} has no free NSID");
    }

    private static SubsystemSpec FindSpec(DesiredState state, string nqn) =>
        state.FindSubsystem(nqn) ?? throw ManagementException.NotFound($"no subsystem {nqn} (see `edgeblock subsystem list`)");

    /// <summary>
    /// One change: <paramref name="plan"/> edits a copy of the desired state (throwing to refuse) and
    /// returns the live step; the whole new state is validated, the step applied, the file written.
    /// If writing fails the step is undone (when it can be) and the error reported.
    /// </summary>
    private async Task<T> ChangeAsync<T>(Func<DesiredState, Task<Func<Task>>> plan, Func<Task>? undo, Func<T> result)
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            var candidate = _desired.Clone();
            var apply = await plan(candidate).ConfigureAwait(false);
            var errors = ConfigValidator.Validate(candidate, _dataDirectory);
            if (errors.Count > 0) throw ManagementException.Invalid(string.Join("; ", errors));
            await apply().ConfigureAwait(false);
            try
            {
                _store.Save(candidate);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                if (undo != null) await undo().ConfigureAwait(false);
                _logger.LogError(ex, "cannot write {Path}", _store.Path);
                throw new ManagementException(500, "cannot save the configuration",
                    $"the change was {(undo != null ? "undone" : "applied but not saved")}: writing {_store.Path} failed: {ex.Message}");
            }
            _desired = candidate;
            return result();
        }
        finally
        {
            _gate.Release();
        }
    }
}
