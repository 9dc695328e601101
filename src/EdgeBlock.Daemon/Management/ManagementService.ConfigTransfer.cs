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
    public ConfigExportResult Export(string? format, bool strict)
    {
        var state = _desired.Clone();
        switch ((format ?? EdgeBlockFormat.Name).ToLowerInvariant())
        {
            case EdgeBlockFormat.Name:
                // The API never returns secrets: the export keeps the entries with empty secrets, which an import refuses.
                var redacted = state.Subsystems.SelectMany(s => s.HostAuth).ToList();
                foreach (var a in redacted)
                {
                    a.DhchapSecret = "";
                    if (a.DhchapCtrlSecret != null) a.DhchapCtrlSecret = "";
                }
                List<string> notes = redacted.Count == 0 ? [] :
                    [$"DH-HMAC-CHAP secrets of {redacted.Count} host(s) are not exported: fill them in before importing, or set them with edgeblock subsystem set-host-secret"];
                return new ConfigExportResult(EdgeBlockFormat.Name, JsonSerializer.SerializeToElement(state, ConfigJson.Options), notes);
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
        ConfigDocument.RequireValidText(document);
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
            // Storage roots widen what API clients may touch, so only the file's owner sets them (edit it, then reload).
            if (imported.State.StorageRoots is { Count: > 0 } roots && !roots.SequenceEqual(current.StorageRoots ?? []))
                throw ManagementException.Invalid($"storage_roots: an import cannot change the storage roots ({string.Join(", ", roots)}); "
                                                  + $"edit them in {_store.Path} and reload (edgeblock config reload)");
            imported.State.StorageRoots = current.StorageRoots;
            var conflicts = new List<string>();
            var candidate = request.Replace ? Replaced(current, imported, conflicts) : Merged(current, imported, conflicts);
            if (conflicts.Count > 0) throw ManagementException.Conflict($"import refused, nothing changed: {string.Join("; ", conflicts)}");
            var invalid = ConfigValidator.Validate(candidate, _dataDirectory);
            CheckQosNames(candidate, invalid);
            if (invalid.Count > 0)
                throw ManagementException.Invalid($"import refused, nothing changed: the configuration after it would be invalid: {string.Join("; ", invalid)}");
            EnforcePolicy(candidate, checkContents: !request.Force, "import refused, nothing changed: ");

            var diff = StateDiff.Between(current, candidate, _dataDirectory);
            var changes = diff.Lines;
            if (request.DryRun || diff.IsEmpty)
                return new ConfigImportResult(format, Applied: false, changes, imported.Warnings);

            await RunAsync(diff).ConfigureAwait(false);
            try
            {
                _store.Save(candidate);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                var failures = await UndoAsync(diff).ConfigureAwait(false);
                _logger.LogError(ex, "cannot write {Path}", _store.Path);
                throw new ManagementException(500, "cannot save the configuration",
                    $"the import was {(failures.Count == 0 ? "undone" : "partly undone (" + string.Join("; ", failures) + ")")}: writing {_store.Path} failed: {ex.Message}");
            }
            PutQosInForce(candidate);
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
        var listeners = candidate.Listeners.Select(l => ConfigValidator.NormalizeAddress(l.Address)).ToHashSet(StringComparer.Ordinal);
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
        MergeQos(candidate, imported.State.Qos);
        return candidate;
    }

    /// <summary>QoS entries of the file replace the current ones of the same volume or group; the others stay.</summary>
    private static void MergeQos(DesiredState candidate, QosSpec? imported)
    {
        if (imported == null) return;
        var qos = candidate.Qos ??= new QosSpec();
        foreach (var v in imported.Volumes)
        {
            qos.Volumes.RemoveAll(x => x.Volume == v.Volume);
            qos.Volumes.Add(v);
        }
        foreach (var g in imported.Groups)
        {
            qos.Groups.RemoveAll(x => x.Group == g.Group);
            qos.Groups.Add(g);
        }
    }

    /// <summary>
    /// The file's state in place of the current one. A backend that stays with the same namespace keeps
    /// running; one that would move to another namespace is refused (it stays open, and locked, after its
    /// namespace is removed until the commands inside it drained).
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

    private string? FullFilePath(string backend) => StateDiff.FullFilePath(backend, _dataDirectory);

    private bool SameNamespace(NamespaceSpec a, NamespaceSpec b) => StateDiff.SameNamespace(a, b, _dataDirectory);

    /// <summary>The engine applies the diff; when it refuses, it went back (or says what it could not undo), and the message says so.</summary>
    private async Task RunAsync(StateDiff diff, string what = "import")
    {
        try
        {
            await _engine.ApplyAsync(diff).ConfigureAwait(false);
        }
        catch (EngineChangeException ex)
        {
            string state = ex.UndoFailures.Count == 0 ? "nothing changed" : $"undoing it failed too ({string.Join("; ", ex.UndoFailures)})";
            var (status, title) = ex.Cause is ManagementException m ? (m.Status, m.Title) : (409, "conflict");
            throw new ManagementException(status, title, $"{what} stopped, {state}: {ex.Cause.Message}");
        }
    }

    /// <summary>Takes an applied diff back; what could not be undone, for the message.</summary>
    private async Task<List<string>> UndoAsync(StateDiff applied)
    {
        try
        {
            await _engine.ApplyAsync(applied.Inverse()).ConfigureAwait(false);
            return [];
        }
        catch (EngineChangeException ex)
        {
            _logger.LogError(ex.Cause, "undoing a config import failed");
            return [ex.Cause.Message, .. ex.UndoFailures];
        }
    }
}
