using System.Text.Json;

namespace EdgeBlock.Daemon.Management;

// `edgeblock config import|export`: a whole configuration in (nvmetcli save JSON or EdgeBlock's own
// desired state) applied as one change, and the desired state out in either format.

/// <summary>
/// A configuration read from a file, with the field (JSON path in that file) each item came from, so that
/// refusals found later (a conflict with the running state) name the file's field.
/// </summary>
public sealed class ImportedConfig(string format)
{
    public string Format { get; } = format;
    public DesiredState State { get; } = new();
    public List<string> Errors { get; } = [];
    public List<string> Warnings { get; } = [];
    /// <summary>Parallel to <see cref="DesiredState.Listeners"/>: the field holding the address.</summary>
    public List<string> ListenerFields { get; } = [];
    /// <summary>Parallel to <see cref="DesiredState.Subsystems"/>: the subsystem's field ("subsystems[1]").</summary>
    public List<string> SubsystemFields { get; } = [];
    /// <summary>Parallel to each subsystem's namespaces: the field naming the backend.</summary>
    public List<List<string>> BackendFields { get; } = [];

    public void Add(ListenerSpec listener, string field)
    {
        State.Listeners.Add(listener);
        ListenerFields.Add(field);
    }

    public void Add(SubsystemSpec subsystem, string field, List<string> backendFields)
    {
        State.Subsystems.Add(subsystem);
        SubsystemFields.Add(field);
        BackendFields.Add(backendFields);
    }
}

/// <summary>EdgeBlock's own format: the desired state file (<c>edgeblock.json</c>) as it is.</summary>
public static class EdgeBlockFormat
{
    public const string Name = ConfigFormats.EdgeBlock;

    public static ImportedConfig Read(JsonElement root, string dataDirectory)
    {
        var result = new ImportedConfig(Name);
        DesiredState? state = null;
        try
        {
            state = root.Deserialize<DesiredState>(ConfigJson.Options);
        }
        catch (JsonException ex)
        {
            result.Errors.Add($"{(ex.Path is { Length: > 0 } p ? p.TrimStart('$', '.') : "(document)")}: {ex.Message}");
        }
        if (state == null)
        {
            if (result.Errors.Count == 0) result.Errors.Add("(document): is null, not a desired state");
            return result;
        }
        result.Errors.AddRange(ConfigValidator.Validate(state, dataDirectory));
        if (result.Errors.Count > 0) return result;
        for (int i = 0; i < state.Listeners.Count; i++)
            result.Add(new ListenerSpec { Address = ConfigValidator.NormalizeAddress(state.Listeners[i].Address) }, $"listeners[{i}].address");
        for (int i = 0; i < state.Subsystems.Count; i++)
        {
            var s = state.Subsystems[i];
            foreach (var ns in s.Namespaces) ns.Uuid ??= NamespaceIdentity.For(s.Nqn, ns.Nsid, ns.Backend);
            result.Add(s, $"subsystems[{i}]", s.Namespaces.Select((_, n) => $"subsystems[{i}].namespaces[{n}].backend").ToList());
        }
        foreach (var v in state.Vhost)
        {
            v.Socket = VhostSocket.Resolve(v.Socket, dataDirectory);
            result.State.Vhost.Add(v);
        }
        result.State.Qos = state.Qos;
        result.State.StorageRoots = state.StorageRoots; // carried so an import that would change them is refused, not silently ignored
        return result;
    }

    /// <summary>nvmetcli's top level has hosts/ports; ours has version/listeners; a lone subsystems list tells by its fields.</summary>
    public static string Detect(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object) return NvmetcliFormat.Name;
        if (root.TryGetProperty("version", out _) || root.TryGetProperty("listeners", out _)) return Name;
        if (root.TryGetProperty("ports", out _) || root.TryGetProperty("hosts", out _)) return NvmetcliFormat.Name;
        if (root.TryGetProperty("subsystems", out var subsystems) && subsystems.ValueKind == JsonValueKind.Array)
            foreach (var s in subsystems.EnumerateArray())
                if (s.ValueKind == JsonValueKind.Object && (s.TryGetProperty("allow_any_host", out _) || s.TryGetProperty("hosts", out _)
                                                            || s.TryGetProperty("namespaces", out var ns) && ns.ValueKind == JsonValueKind.Array
                                                               && ns.EnumerateArray().Any(n => n.ValueKind == JsonValueKind.Object && n.TryGetProperty("backend", out _))))
                    return Name;
        return NvmetcliFormat.Name;
    }
}
