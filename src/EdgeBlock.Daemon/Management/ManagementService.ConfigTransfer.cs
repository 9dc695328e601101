using System.Text.Json;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Daemon.Management;

/// <summary>
/// Whole-configuration import and export. An import is one change: the file is read and checked as a
/// whole (errors name its fields), merged into (or, with replace, put in place of) the desired state,
/// validated, and only then applied step by step; a step that fails undoes the ones before it.
/// </summary>
public sealed partial class ManagementService
{
    private sealed record Step(Func<Task> Apply, Func<Task>? Undo);

    public ConfigExportResult Export(string? format, bool strict)
    {
        var state = _desired.Clone();
        switch ((format ?? EdgeBlockFormat.Name).ToLowerInvariant())
        {
            case EdgeBlockFormat.Name:
                return new ConfigExportResult(EdgeBlockFormat.Name, JsonSerializer.SerializeToElement(state, ConfigJson.Options), []);
            case NvmetcliFormat.Name:
                var warnings = new List<string>();
                var errors = new List<string>();
                var document = NvmetcliFormat.Write(state, _dataDirectory, strict, warnings, errors);
                if (errors.Count > 0)
                    throw ManagementException.Conflict($"nvmetcli cannot express: {string.Join("; ", errors)} (without --strict these are left out with a warning)");
                return new ConfigExportResult(NvmetcliFormat.Name, JsonSerializer.SerializeToElement(document), warnings);
            default:
                throw ManagementException.Invalid($"format '{format}' is not one of: {EdgeBlockFormat.Name}, {NvmetcliFormat.Name}");
        }
    }

    public async Task<ConfigImportResult> ImportAsync(ConfigImportRequest request)
    {
        var document = request.Document;
        if (document.ValueKind == JsonValueKind.Undefined) throw ManagementException.Invalid("document: missing (the configuration to import)");
        string format = (request.Format ?? "auto").ToLowerInvariant() switch
        {
            "" or "auto" => EdgeBlockFormat.Detect(document),
            NvmetcliFormat.Name => NvmetcliFormat.Name,
            EdgeBlockFormat.Name => EdgeBlockFormat.Name,
            _ => throw ManagementException.Invalid($"format '{request.Format}' is not one of: auto, {NvmetcliFormat.Name}, {EdgeBlockFormat.Name}"),
        };

        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            var imported = format == NvmetcliFormat.Name
                ? NvmetcliFormat.Read(document, _dataDirectory, request.Strict)
                : EdgeBlockFormat.Read(document, _dataDirectory);
            if (imported.Errors.Count > 0)
                throw ManagementException.Invalid($"{format} file refused, nothing changed: {string.Join("; ", imported.Errors)}");

            var current = _desired.Clone();
            var conflicts = new List<string>();
            var candidate = request.Replace ? Replaced(current, imported, conflicts) : Merged(current, imported, conflicts);
            if (conflicts.Count > 0) throw ManagementException.Conflict($"import refused, nothing changed: {string.Join("; ", conflicts)}");
            var invalid = ConfigValidator.Validate(candidate, _dataDirectory);
            if (invalid.Count > 0)
                throw ManagementException.Invalid($"import refused, nothing changed: the configuration after it would be invalid: {string.Join("; ", invalid)}");

            var (changes, steps) = Plan(current, candidate);
            if (request.DryRun || steps.Count == 0)
                return new ConfigImportResult(format, Applied: false, changes, imported.Warnings);

            await RunAsync(steps).ConfigureAwait(false);
            try
            {
                _store.Save(candidate);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                var failures = await UndoAsync(steps).ConfigureAwait(false);
                _logger.LogError(ex, "cannot write {Path}", _store.Path);
                throw new ManagementException(500, "cannot save the configuration",
                    $"the import was {(failures.Count == 0 ? "undone" : "partly undone (" + string.Join("; ", failures) + ")")}: writing {_store.Path} failed: {ex.Message}");
            }
            _desired = candidate;
            _logger.LogInformation("config import ({Format}{Mode}): {Changes}", format, request.Replace ? ", replace" : "", string.Join("; ", changes));
            return new ConfigImportResult(format, Applied: true, changes, imported.Warnings);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The current state plus the file's; a subsystem the daemon already has, or a backend already in use, is a conflict.</summary>
    private DesiredState Merged(DesiredState current, ImportedConfig imported, List<string> conflicts)
    {
        var candidate = current.Clone();
        var listeners = candidate.Listeners.Select(l => Reconciler.Normalize(l.Address)).ToHashSet(StringComparer.Ordinal);
        foreach (var l in imported.State.Listeners)
            if (listeners.Add(l.Address)) candidate.Listeners.Add(l);
        var used = FileUsers(current);
        for (int i = 0; i < imported.State.Subsystems.Count; i++)
        {
            var s = imported.State.Subsystems[i];
            string field = imported.SubsystemFields[i];
            if (candidate.FindSubsystem(s.Nqn) != null)
            {
                conflicts.Add($"{field}.nqn: subsystem {s.Nqn} already exists here; delete it first (edgeblock subsystem delete {s.Nqn}) "
                              + "or import with --replace to make the file the whole configuration");
                continue;
            }
            for (int n = 0; n < s.Namespaces.Count; n++)
                if (FullFilePath(s.Namespaces[n].Backend) is { } path && used.TryGetValue(path, out var user))
                    conflicts.Add($"{imported.BackendFields[i][n]}: {path} already backs namespace {user.Nsid} of {user.Nqn}");
            candidate.Subsystems.Add(s);
        }
        foreach (var v in imported.State.Vhost)
        {
            if (candidate.Vhost.Any(x => VhostSocket.Resolve(x.Socket, _dataDirectory) == VhostSocket.Resolve(v.Socket, _dataDirectory)))
                conflicts.Add($"vhost socket {v.Socket} is already served here; remove it first (edgeblock vhost remove {v.Socket}) or import with --replace");
            else candidate.Vhost.Add(v);
        }
        return candidate;
    }

    /// <summary>
    /// The file's state in place of the current one. A backend that stays with the same namespace keeps
    /// running; one that would move to another namespace is refused (it stays open, and locked, a moment
    /// after its namespace is removed).
    /// </summary>
    private DesiredState Replaced(DesiredState current, ImportedConfig imported, List<string> conflicts)
    {
        var candidate = imported.State;
        var used = FileUsers(current);
        for (int i = 0; i < candidate.Subsystems.Count; i++)
        {
            var s = candidate.Subsystems[i];
            for (int n = 0; n < s.Namespaces.Count; n++)
            {
                var ns = s.Namespaces[n];
                if (FullFilePath(ns.Backend) is not { } path || !used.TryGetValue(path, out var user)) continue;
                var old = current.FindSubsystem(user.Nqn)!.Namespaces.First(x => x.Nsid == user.Nsid);
                if (user.Nqn == s.Nqn && SameNamespace(old, ns)) continue;
                conflicts.Add($"{imported.BackendFields[i][n]}: {path} backs namespace {user.Nsid} of {user.Nqn} (uuid {old.Uuid}) now; "
                              + $"moving a backend to another namespace in one import is not supported: remove that namespace first "
                              + $"(edgeblock namespace remove {user.Nqn} {user.Nsid}), then import");
            }
        }
        return candidate;
    }

    private Dictionary<string, (string Nqn, uint Nsid)> FileUsers(DesiredState state)
    {
        var users = new Dictionary<string, (string, uint)>(StringComparer.Ordinal);
        foreach (var s in state.Subsystems)
            foreach (var ns in s.Namespaces)
                if (FullFilePath(ns.Backend) is { } path) users.TryAdd(path, (s.Nqn, ns.Nsid));
        return users;
    }

    private string? FullFilePath(string backend) =>
        BackendSpec.TryParse(backend, out var spec, out _) && spec.Kind == BackendKind.File ? spec.FullPath(_dataDirectory) : null;

    /// <summary>Same NSID, UUID and device: the running namespace can stay (a file's size option or relative spelling may differ).</summary>
    private bool SameNamespace(NamespaceSpec a, NamespaceSpec b)
    {
        if (a.Nsid != b.Nsid || a.Uuid != b.Uuid) return false;
        if (FullFilePath(a.Backend) is { } pa) return pa == FullFilePath(b.Backend);
        return BackendSpec.TryParse(a.Backend, out var sa, out _) && BackendSpec.TryParse(b.Backend, out var sb, out _) && sa == sb;
    }

    /// <summary>
    /// The live steps from <paramref name="current"/> to <paramref name="candidate"/>, with a line per change.
    /// Additions come first (they are what can fail: a port in use, a device that will not open), removals last.
    /// </summary>
    private (List<string> Changes, List<Step> Steps) Plan(DesiredState current, DesiredState candidate)
    {
        var changes = new List<string>();
        var adds = new List<Step>();
        var removes = new List<Step>();

        var oldListeners = current.Listeners.Select(l => Reconciler.Normalize(l.Address)).ToList();
        var newListeners = candidate.Listeners.Select(l => Reconciler.Normalize(l.Address)).ToList();
        foreach (string a in newListeners.Except(oldListeners))
        {
            changes.Add($"+ listener {a}");
            adds.Add(new Step(() => { _reconciler.AddListener(a); return Task.CompletedTask; }, () => _reconciler.RemoveListenerAsync(a)));
        }
        foreach (string a in oldListeners.Except(newListeners))
        {
            changes.Add($"- listener {a}");
            removes.Add(new Step(() => _reconciler.RemoveListenerAsync(a), () => { _reconciler.AddListener(a); return Task.CompletedTask; }));
        }

        foreach (var s in candidate.Subsystems)
        {
            var o = current.FindSubsystem(s.Nqn);
            if (o == null)
            {
                changes.Add($"+ subsystem {s.Nqn} ({Access(s)})");
                changes.AddRange(s.Namespaces.OrderBy(n => n.Nsid).Select(n => $"+ namespace {n.Nsid} of {s.Nqn}: {n.Backend} (uuid {n.Uuid})"));
                adds.Add(Sync(() => _reconciler.AddSubsystem(s), () => _reconciler.RemoveSubsystem(s.Nqn)));
                continue;
            }
            string nqn = s.Nqn;
            foreach (string h in s.Hosts.Except(o.Hosts))
            {
                changes.Add($"+ host {h} on {nqn}");
                adds.Add(Sync(() => _reconciler.AddHost(nqn, h), () => _reconciler.RemoveHost(nqn, h)));
            }
            if (s.AllowAnyHost && !o.AllowAnyHost)
            {
                changes.Add($"~ subsystem {nqn}: any host may connect");
                adds.Add(Sync(() => _reconciler.SetAllowAnyHost(nqn, true), () => _reconciler.SetAllowAnyHost(nqn, false)));
            }
            else if (!s.AllowAnyHost && o.AllowAnyHost)
            {
                changes.Add($"~ subsystem {nqn}: only listed hosts may connect (others are disconnected)");
                removes.Add(Sync(() => { _reconciler.SetAllowAnyHost(nqn, false); Evict(nqn); }, () => _reconciler.SetAllowAnyHost(nqn, true)));
            }
            foreach (string h in o.Hosts.Except(s.Hosts))
            {
                changes.Add($"- host {h} on {nqn}");
                removes.Add(Sync(() => _reconciler.RemoveHost(nqn, h), () => _reconciler.AddHost(nqn, h)));
            }
            foreach (var n in s.Namespaces.OrderBy(n => n.Nsid))
            {
                var old = o.Namespaces.FirstOrDefault(x => x.Nsid == n.Nsid);
                if (old != null && SameNamespace(old, n)) continue;
                if (old != null)
                {
                    changes.Add($"~ namespace {n.Nsid} of {nqn}: {old.Backend} (uuid {old.Uuid}) -> {n.Backend} (uuid {n.Uuid})");
                    adds.Add(Sync(() => _reconciler.RemoveNamespace(nqn, old.Nsid), () => _reconciler.AddNamespace(nqn, old)));
                }
                else changes.Add($"+ namespace {n.Nsid} of {nqn}: {n.Backend} (uuid {n.Uuid})");
                adds.Add(Sync(() => _reconciler.AddNamespace(nqn, n), () => _reconciler.RemoveNamespace(nqn, n.Nsid)));
            }
            foreach (var old in o.Namespaces.Where(x => s.Namespaces.All(n => n.Nsid != x.Nsid)).OrderBy(x => x.Nsid))
            {
                changes.Add($"- namespace {old.Nsid} of {nqn}: {old.Backend}");
                removes.Add(Sync(() => _reconciler.RemoveNamespace(nqn, old.Nsid), () => _reconciler.AddNamespace(nqn, old)));
            }
        }
        foreach (var o in current.Subsystems.Where(o => candidate.FindSubsystem(o.Nqn) == null))
        {
            changes.Add($"- subsystem {o.Nqn} (and its {o.Namespaces.Count} namespace(s); backing files are kept)");
            removes.Add(Sync(() => _reconciler.RemoveSubsystem(o.Nqn), () => _reconciler.AddSubsystem(o)));
        }
        PlanVhost(current, candidate, changes, adds, removes);
        return (changes, [.. adds, .. removes]);
    }

    /// <summary>vhost exports by socket: a changed one is stopped and started again (its VM reconnects).</summary>
    private void PlanVhost(DesiredState current, DesiredState candidate, List<string> changes, List<Step> adds, List<Step> removes)
    {
        string Key(VhostSpec v) => VhostSocket.Resolve(v.Socket, _dataDirectory);
        static bool Same(VhostSpec a, VhostSpec b) => a.Backend == b.Backend && a.QueueCount == b.QueueCount && a.ReadOnly == b.ReadOnly;
        var old = current.Vhost.ToDictionary(Key, StringComparer.Ordinal);
        foreach (var v in candidate.Vhost)
        {
            var o = old.GetValueOrDefault(Key(v));
            if (o != null && Same(o, v)) continue;
            if (o != null)
            {
                changes.Add($"~ vhost {Key(v)}: {o.Backend} -> {v.Backend}, {v.QueueCount} queues{(v.ReadOnly ? ", read-only" : "")}");
                adds.Add(new Step(() => _reconciler.RemoveVhostAsync(o.Socket), () => { _reconciler.AddVhost(o); return Task.CompletedTask; }));
            }
            else changes.Add($"+ vhost {Key(v)}: {v.Backend}");
            adds.Add(new Step(() => { _reconciler.AddVhost(v); return Task.CompletedTask; }, () => _reconciler.RemoveVhostAsync(v.Socket)));
        }
        var kept = candidate.Vhost.Select(Key).ToHashSet(StringComparer.Ordinal);
        foreach (var (socket, o) in old.Where(x => !kept.Contains(x.Key)))
        {
            changes.Add($"- vhost {socket}: {o.Backend} (its VM loses the disk)");
            removes.Add(new Step(() => _reconciler.RemoveVhostAsync(o.Socket), () => { _reconciler.AddVhost(o); return Task.CompletedTask; }));
        }
    }

    private static Step Sync(Action apply, Action undo) =>
        new(() => { apply(); return Task.CompletedTask; }, () => { undo(); return Task.CompletedTask; });

    private static string Access(SubsystemSpec s) =>
        s.AllowAnyHost ? "any host" + (s.Hosts.Count > 0 ? $", hosts listed: {string.Join(", ", s.Hosts)}" : "")
        : s.Hosts.Count == 0 ? "no host may connect yet" : $"hosts: {string.Join(", ", s.Hosts)}";

    /// <summary>Disconnects the controllers of hosts a subsystem no longer admits.</summary>
    private void Evict(string nqn, string why = "config import")
    {
        if (_target.FindSubsystem(nqn) is not { } subsystem) return;
        foreach (var c in subsystem.Controllers)
            if (!subsystem.IsHostAllowed(c.HostNqn)) c.Destroy($"host {c.HostNqn} no longer allowed on {nqn} ({why})");
    }

    /// <summary>Applies the steps in order; when one fails, undoes those done (last first) and reports.</summary>
    private async Task RunAsync(List<Step> steps, string what = "import")
    {
        var done = new List<Step>();
        foreach (var step in steps)
        {
            try
            {
                await step.Apply().ConfigureAwait(false);
                done.Add(step);
            }
            catch (Exception ex) when (ex is ManagementException or InvalidOperationException or IOException or ArgumentException)
            {
                var failures = await UndoAsync(done).ConfigureAwait(false);
                string state = failures.Count == 0 ? "nothing changed" : $"undoing it failed too ({string.Join("; ", failures)})";
                var (status, title) = ex is ManagementException m ? (m.Status, m.Title) : (409, "conflict");
                throw new ManagementException(status, title, $"{what} stopped, {state}: {ex.Message}");
            }
        }
    }

    private async Task<List<string>> UndoAsync(List<Step> done)
    {
        var failures = new List<string>();
        for (int i = done.Count - 1; i >= 0; i--)
        {
            if (done[i].Undo is not { } undo) continue;
            try
            {
                await undo().ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is ManagementException or InvalidOperationException or IOException or ArgumentException)
            {
                _logger.LogError(ex, "undoing a step of a config import failed");
                failures.Add(ex.Message);
            }
        }
        return failures;
    }
}
