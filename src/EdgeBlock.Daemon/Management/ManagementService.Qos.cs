using EdgeBlock.Api.Pools;
using EdgeBlock.Daemon.Pools;
using EdgeBlock.Volumes;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Daemon.Management;

/// <summary>
/// QoS of volumes and groups: desired state like the rest (validated, saved, carried by export and import), put in
/// force by the pools' <see cref="QosRegistry"/> after every change.
/// </summary>
public sealed partial class ManagementService
{
    public Task<QosInfo> SetVolumeQosAsync(string pool, string volume, SetVolumeQosRequest request)
    {
        string key = $"{pool}/{volume}";
        return ChangeAsync(state =>
        {
            RequireVolume(pool, volume);
            var qos = state.Qos ??= new QosSpec();
            Edit(state, qos.Volumes, qos.FindVolume(key) ?? new VolumeQosSpec { Volume = key }, spec => QosRequests.Apply(spec, request, $"volume {key}"));
        }, undoable: true, result: () => DescribeVolumeQos(pool, volume));
    }

    public async Task<QosInfo> SetGroupQosAsync(string pool, string group, SetGroupQosRequest request)
    {
        string key = $"{pool}/{group}";
        QosRequests.Apply(new GroupQosSpec(), request, $"group {key}"); // a bad value is refused before the group is made
        await EnsureGroupAsync(pool, group).ConfigureAwait(false);
        return await ChangeAsync(state =>
        {
            var qos = state.Qos ??= new QosSpec();
            Edit(state, qos.Groups, qos.FindGroup(key) ?? new GroupQosSpec { Group = key }, spec => QosRequests.Apply(spec, request, $"group {key}"));
        }, undoable: true, result: () => DescribeGroupQos(pool, group) ?? new QosInfo(null, null, null, null)).ConfigureAwait(false);
    }

    /// <summary>A group with QoS must exist in its pool; `group set` creates it, as it does for a quota.</summary>
    private async Task EnsureGroupAsync(string pool, string group)
    {
        var pools = RequirePools();
        try
        {
            PoolNames.Check("group", group);
            if (pools.ListGroups(pool).All(g => g.Name != group)) await pools.Get(pool).SetGroupQuotaAsync(group, null).ConfigureAwait(false);
        }
        catch (VolumeException ex)
        {
            throw PoolManager.Refusal(ex);
        }
    }

    /// <summary>A deleted volume's QoS goes with it (a volume created later under the name starts without).</summary>
    private Task DropVolumeQosAsync(string pool, string volume)
    {
        string key = $"{pool}/{volume}";
        if (_desired.Qos?.FindVolume(key) == null) return Task.CompletedTask;
        return ChangeAsync<object?>(state =>
        {
            state.Qos?.Volumes.RemoveAll(v => v.Volume == key);
            Tidy(state);
        }, undoable: true, result: () => null);
    }

    public QosInfo DescribeVolumeQos(string pool, string volume) =>
        _pools?.Qos.Describe(pool, volume) ?? new QosInfo(null, null, null, null);

    public QosInfo? DescribeGroupQos(string pool, string group) => _pools?.Qos.DescribeGroup(pool, group);

    /// <summary>Applies a request to an entry (the current one or a new one); an entry left setting nothing is dropped.</summary>
    private static void Edit<T>(DesiredState state, List<T> entries, T spec, Action<T> apply) where T : QosLimitsSpec
    {
        entries.Remove(spec);
        apply(spec);
        if (!spec.IsEmpty) entries.Add(spec);
        Tidy(state);
    }

    private static void Tidy(DesiredState state)
    {
        if (state.Qos is { Volumes.Count: 0, Groups.Count: 0 }) state.Qos = null; // the file stays as it was without QoS
    }

    private PoolManager RequirePools() => _pools ?? throw ManagementException.NotFound("this daemon has no pools");

    private void RequireVolume(string pool, string volume)
    {
        if (VolumeProblem(pool, volume) is { } why) throw ManagementException.NotFound(why);
    }

    private string? VolumeProblem(string pool, string volume)
    {
        if (_pools == null) return "this daemon has no pools";
        try
        {
            return _pools.GetVolume(pool, volume).IsSnapshot ? $"{pool}/{volume} is a snapshot (read-only, never exported); set QoS on a clone" : null;
        }
        catch (VolumeException ex)
        {
            return ex.Message;
        }
    }

    private string? GroupProblem(string pool, string group)
    {
        if (_pools == null) return "this daemon has no pools";
        try
        {
            return _pools.ListGroups(pool).Any(g => g.Name == group) ? null
                : $"pool {pool} has no group {group} (edgeblock group set {pool}/{group} creates it)";
        }
        catch (VolumeException ex)
        {
            return ex.Message;
        }
    }

    /// <summary>
    /// Refuses QoS entries a change adds or alters for a volume or group the pools do not have, naming the field.
    /// Entries that were in force already are not judged again: a pool that did not open keeps its volumes' QoS.
    /// </summary>
    private void CheckQosNames(DesiredState candidate, List<string> errors)
    {
        if (candidate.Qos == null) return;
        bool IsNew(QosLimitsSpec spec) => spec switch
        {
            VolumeQosSpec v => _desired.Qos?.FindVolume(v.Volume) is not { } old || !Same(old, v),
            GroupQosSpec g => _desired.Qos?.FindGroup(g.Group) is not { } old || !Same(old, g),
            _ => true,
        };
        QosValidator.CheckNames(candidate.Qos, VolumeProblem, GroupProblem, errors, IsNew);
    }

    private static bool Same(QosLimitsSpec a, QosLimitsSpec b) =>
        a.ToLimits() == b.ToLimits() && (a as VolumeQosSpec)?.Weight == (b as VolumeQosSpec)?.Weight;

    /// <summary>Puts a desired state's QoS in force; at start, entries naming what the pools lack are logged (kept, as dormant namespaces are).</summary>
    private void PutQosInForce(DesiredState state, bool starting = false)
    {
        if (_pools == null) return;
        if (starting)
        {
            var unknown = new List<string>();
            QosValidator.CheckNames(state.Qos, VolumeProblem, GroupProblem, unknown);
            foreach (string problem in unknown) _logger.LogWarning("QoS kept but not in force: {Problem}", problem);
        }
        _pools.Qos.Apply(state.Qos);
    }
}
