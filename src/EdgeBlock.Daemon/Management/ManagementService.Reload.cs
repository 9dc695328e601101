using EdgeBlock.Daemon.Pools;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Daemon.Management;

/// <summary>
/// Changing a subsystem's access (`subsystem set`), and reloading a hand-edited config file (SIGHUP):
/// both go the way every API change goes — checked on a copy, validated whole, applied step by step
/// (a step that fails undoes the ones before it), and only then taken as the desired state.
/// </summary>
public sealed partial class ManagementService
{
    /// <summary>
    /// Changes allow_any_host of a subsystem. Turning it off disconnects the controllers of hosts that are not
    /// on the subsystem's list (as removing a host does); their hosts are refused when they try to reconnect.
    /// </summary>
    public Task<SubsystemInfo> UpdateSubsystemAsync(string nqn, UpdateSubsystemRequest request)
    {
        bool? changed = null;
        return ChangeAsync(state =>
        {
            var spec = FindSpec(state, nqn);
            if (request.AllowAnyHost is not { } allow) throw ManagementException.Invalid("nothing to change: give allow_any_host (true or false)");
            if (spec.AllowAnyHost != allow) changed = allow;
            spec.AllowAnyHost = allow;
        }, undoable: true, result: () =>
        {
            if (changed is { } allow)
                _logger.LogInformation("subsystem {Nqn}: {Access}", nqn, allow ? "any host may connect" : "only listed hosts may connect (others disconnected)");
            return Subsystem(nqn);
        });
    }

    /// <summary>
    /// Reads the config file again (after a hand edit) and makes the running target match it. A file that
    /// cannot be read or is invalid is refused — the message names the field, its value and why — and nothing
    /// changes; so is a step that fails (a port in use, a backend that will not open), after undoing the steps
    /// before it. The file is rewritten only when namespaces without a UUID were given one.
    /// </summary>
    public async Task<ConfigReloadResult> ReloadAsync()
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            DesiredState candidate;
            try
            {
                candidate = _store.Load();
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw ManagementException.Invalid($"config {_store.Path} cannot be read, running state kept: {ex.Message}");
            }
            catch (ManagementException ex)
            {
                throw ManagementException.Invalid($"{ex.Message} (running state kept)");
            }
            var errors = ConfigValidator.Validate(candidate, _dataDirectory);
            if (errors.Count > 0)
                throw ManagementException.Invalid($"config {_store.Path} refused, running state kept: {string.Join("; ", errors)}");
            bool assigned = AssignUuids(candidate);
            errors = ConfigValidator.Validate(candidate, _dataDirectory); // a volume's UUID could now collide with one written by hand
            CheckQosNames(candidate, errors);
            if (errors.Count > 0)
                throw ManagementException.Invalid($"config {_store.Path} refused, running state kept: {string.Join("; ", errors)}");
            // The file's author chose its devices: contents are not judged, places and use are.
            EnforcePolicy(candidate, checkContents: false, $"config {_store.Path} refused, running state kept: ");

            var diff = StateDiff.Between(_desired, candidate, _dataDirectory);
            if (!diff.IsEmpty) await RunAsync(diff, "reload").ConfigureAwait(false);
            if (assigned)
            {
                try
                {
                    _store.Save(candidate);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    // The running state matches the file; only the generated UUIDs are not written back yet.
                    _logger.LogError(ex, "config reload: cannot write the generated namespace UUIDs to {Path}", _store.Path);
                }
            }
            PutQosInForce(candidate);
            _desired = candidate;
            return new ConfigReloadResult(_store.Path, diff.Lines);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>SIGHUP: reload and log the outcome (the daemon runs on either way).</summary>
    public async Task ReloadOnSignalAsync()
    {
        try
        {
            var result = await ReloadAsync().ConfigureAwait(false);
            if (result.Changes.Count == 0) _logger.LogInformation("SIGHUP: {Path} reloaded: nothing to change", result.ConfigPath);
            else _logger.LogInformation("SIGHUP: {Path} reloaded: {Changes}", result.ConfigPath, string.Join("; ", result.Changes));
        }
        catch (ManagementException ex)
        {
            _logger.LogError("SIGHUP: {Message}", ex.Message);
        }
        catch (Exception ex) when (ex is InvalidOperationException or IOException or ArgumentException)
        {
            _logger.LogError(ex, "SIGHUP: reloading {Path} failed, running state kept", _store.Path);
        }
    }

    /// <summary>
    /// Namespaces the file gives no UUID keep the one they run with (same NSID and backend); a new one gets its
    /// volume's UUID or a fresh one. True when anything was assigned.
    /// </summary>
    private bool AssignUuids(DesiredState state)
    {
        bool assigned = false;
        foreach (var s in state.Subsystems)
        {
            foreach (var ns in s.Namespaces.Where(n => n.Uuid == null))
            {
                var running = _desired.FindSubsystem(s.Nqn)?.Namespaces.FirstOrDefault(n => n.Nsid == ns.Nsid);
                if (running != null && running.Uuid != null && SameNamespace(running, new NamespaceSpec { Nsid = ns.Nsid, Backend = ns.Backend, Uuid = running.Uuid }))
                    ns.Uuid = running.Uuid;
                else if (BackendSpec.TryParse(ns.Backend, out var backend, out _))
                    ns.Uuid = VolumeBackends.NewNamespaceUuid(_pools, backend);
                assigned = true;
            }
        }
        return assigned;
    }
}
