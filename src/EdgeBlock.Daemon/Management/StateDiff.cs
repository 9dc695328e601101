namespace EdgeBlock.Daemon.Management;

/// <summary>One change between two desired states, as an engine applies it; <see cref="Inverse"/> undoes it.</summary>
public abstract record EngineChange
{
    public abstract EngineChange Inverse();
}

public sealed record ListenerAdded(string Address) : EngineChange
{
    public override EngineChange Inverse() => new ListenerRemoved(Address);
}

public sealed record ListenerRemoved(string Address) : EngineChange
{
    public override EngineChange Inverse() => new ListenerAdded(Address);
}

/// <summary>A subsystem with its hosts and namespaces.</summary>
public sealed record SubsystemAdded(SubsystemSpec Spec) : EngineChange
{
    public override EngineChange Inverse() => new SubsystemRemoved(Spec);
}

/// <summary>A subsystem with its namespaces (their devices close once drained).</summary>
public sealed record SubsystemRemoved(SubsystemSpec Spec) : EngineChange
{
    public override EngineChange Inverse() => new SubsystemAdded(Spec);
}

public sealed record HostAdded(string Nqn, string HostNqn) : EngineChange
{
    public override EngineChange Inverse() => new HostRemoved(Nqn, HostNqn);
}

/// <summary>A host taken off a subsystem's list: its controllers go unless any host may connect.</summary>
public sealed record HostRemoved(string Nqn, string HostNqn) : EngineChange
{
    public override EngineChange Inverse() => new HostAdded(Nqn, HostNqn);
}

/// <summary>allow_any_host changed; turned off, controllers of hosts not on the list are disconnected.</summary>
/// <summary>A host's DH-HMAC-CHAP secrets were set, changed (Spec) or removed (null).</summary>
public sealed record HostAuthChanged(string Nqn, string HostNqn, HostAuthSpec? Spec, HostAuthSpec? Previous) : EngineChange
{
    public override EngineChange Inverse() => new HostAuthChanged(Nqn, HostNqn, Previous, Spec);

    public override string ToString() => $"host {HostNqn} on {Nqn}: DH-HMAC-CHAP {(Spec == null ? "off" : "secret set")}";
}

public sealed record AccessChanged(string Nqn, bool AllowAnyHost) : EngineChange
{
    public override EngineChange Inverse() => new AccessChanged(Nqn, !AllowAnyHost);
}

public sealed record NamespaceAdded(string Nqn, NamespaceSpec Spec) : EngineChange
{
    public override EngineChange Inverse() => new NamespaceRemoved(Nqn, Spec);
}

public sealed record NamespaceRemoved(string Nqn, NamespaceSpec Spec) : EngineChange
{
    public override EngineChange Inverse() => new NamespaceAdded(Nqn, Spec);
}

public sealed record VhostAdded(VhostSpec Spec) : EngineChange
{
    public override EngineChange Inverse() => new VhostRemoved(Spec);
}

public sealed record HostDeviceAdded(HostDeviceSpec Spec) : EngineChange
{
    public override EngineChange Inverse() => new HostDeviceRemoved(Spec);
}

public sealed record HostDeviceRemoved(HostDeviceSpec Spec) : EngineChange
{
    public override EngineChange Inverse() => new HostDeviceAdded(Spec);
}

public sealed record VhostRemoved(VhostSpec Spec) : EngineChange
{
    public override EngineChange Inverse() => new VhostAdded(Spec);
}

/// <summary>
/// The way from one validated desired state to another: the changes in the order an engine applies
/// them (additions first — they are what can fail: a port in use, a device that will not open —
/// removals last) and a line per change for the user (import, reload).
/// </summary>
/// <param name="Lines">"+ listener 127.0.0.1:4420", "~ namespace 1 of …", "- vhost …": what each change does, for the user.</param>
public sealed record StateDiff(DesiredState From, DesiredState To, IReadOnlyList<EngineChange> Changes, IReadOnlyList<string> Lines)
{
    /// <summary>Nothing for the engine and nothing else (QoS changes have a line but no engine change: the pools apply them).</summary>
    public bool IsEmpty => Changes.Count == 0 && Lines.Count == 0;

    /// <summary>The way back: each change undone, last first.</summary>
    public StateDiff Inverse() => new(To, From, Changes.Reverse().Select(c => c.Inverse()).ToList(), []);

    public static StateDiff Between(DesiredState from, DesiredState to, string dataDirectory)
    {
        var lines = new List<string>();
        var adds = new List<EngineChange>();
        var removes = new List<EngineChange>();

        var oldListeners = from.Listeners.Select(l => ConfigValidator.NormalizeAddress(l.Address)).ToList();
        var newListeners = to.Listeners.Select(l => ConfigValidator.NormalizeAddress(l.Address)).ToList();
        foreach (string a in newListeners.Except(oldListeners))
        {
            lines.Add($"+ listener {a}");
            adds.Add(new ListenerAdded(a));
        }
        foreach (string a in oldListeners.Except(newListeners))
        {
            lines.Add($"- listener {a}");
            removes.Add(new ListenerRemoved(a));
        }

        foreach (var s in to.Subsystems)
        {
            var o = from.FindSubsystem(s.Nqn);
            if (o == null)
            {
                lines.Add($"+ subsystem {s.Nqn} ({Access(s)})");
                lines.AddRange(s.Namespaces.OrderBy(n => n.Nsid).Select(n => $"+ namespace {n.Nsid} of {s.Nqn}: {n.Backend} (uuid {n.Uuid})"));
                adds.Add(new SubsystemAdded(s));
                continue;
            }
            string nqn = s.Nqn;
            foreach (string h in s.Hosts.Except(o.Hosts))
            {
                lines.Add($"+ host {h} on {nqn}");
                adds.Add(new HostAdded(nqn, h));
            }
            foreach (var a in s.HostAuth.Where(a => o.FindHostAuth(a.HostNqn) is not { } old || !old.SameAs(a)))
            {
                lines.Add($"~ host {a.HostNqn} on {nqn}: DH-HMAC-CHAP secret set");
                adds.Add(new HostAuthChanged(nqn, a.HostNqn, a, o.FindHostAuth(a.HostNqn)));
            }
            foreach (var a in o.HostAuth.Where(a => s.FindHostAuth(a.HostNqn) == null))
            {
                lines.Add($"~ host {a.HostNqn} on {nqn}: DH-HMAC-CHAP off");
                adds.Add(new HostAuthChanged(nqn, a.HostNqn, null, a));
            }
            if (s.AllowAnyHost && !o.AllowAnyHost)
            {
                lines.Add($"~ subsystem {nqn}: any host may connect");
                adds.Add(new AccessChanged(nqn, true));
            }
            else if (!s.AllowAnyHost && o.AllowAnyHost)
            {
                lines.Add($"~ subsystem {nqn}: only listed hosts may connect (others are disconnected)");
                removes.Add(new AccessChanged(nqn, false));
            }
            foreach (string h in o.Hosts.Except(s.Hosts))
            {
                lines.Add($"- host {h} on {nqn}");
                removes.Add(new HostRemoved(nqn, h));
            }
            foreach (var n in s.Namespaces.OrderBy(n => n.Nsid))
            {
                var old = o.Namespaces.FirstOrDefault(x => x.Nsid == n.Nsid);
                if (old != null && SameNamespace(old, n, dataDirectory)) continue;
                if (old != null)
                {
                    lines.Add($"~ namespace {n.Nsid} of {nqn}: {old.Backend} (uuid {old.Uuid}) -> {n.Backend} (uuid {n.Uuid})");
                    adds.Add(new NamespaceRemoved(nqn, old));
                }
                else lines.Add($"+ namespace {n.Nsid} of {nqn}: {n.Backend} (uuid {n.Uuid})");
                adds.Add(new NamespaceAdded(nqn, n));
            }
            foreach (var old in o.Namespaces.Where(x => s.Namespaces.All(n => n.Nsid != x.Nsid)).OrderBy(x => x.Nsid))
            {
                lines.Add($"- namespace {old.Nsid} of {nqn}: {old.Backend}");
                removes.Add(new NamespaceRemoved(nqn, old));
            }
        }
        foreach (var o in from.Subsystems.Where(o => to.FindSubsystem(o.Nqn) == null))
        {
            lines.Add($"- subsystem {o.Nqn} (and its {o.Namespaces.Count} namespace(s); backing files are kept)");
            removes.Add(new SubsystemRemoved(o));
        }
        VhostChanges(from, to, dataDirectory, lines, adds, removes);
        HostDeviceChanges(from, to, lines, adds, removes);
        QosChanges(from.Qos ?? new QosSpec(), to.Qos ?? new QosSpec(), lines);
        return new StateDiff(from, to, [.. adds, .. removes], lines);
    }

    /// <summary>vhost exports by socket: a changed one is stopped and started again (its VM reconnects).</summary>
    private static void VhostChanges(DesiredState from, DesiredState to, string dataDirectory, List<string> lines,
        List<EngineChange> adds, List<EngineChange> removes)
    {
        string Key(VhostSpec v) => VhostSocket.Resolve(v.Socket, dataDirectory);
        static bool Same(VhostSpec a, VhostSpec b) => a.Backend == b.Backend && a.QueueCount == b.QueueCount && a.ReadOnly == b.ReadOnly;
        var old = from.Vhost.ToDictionary(Key, StringComparer.Ordinal);
        foreach (var v in to.Vhost)
        {
            var o = old.GetValueOrDefault(Key(v));
            if (o != null && Same(o, v)) continue;
            if (o != null)
            {
                lines.Add($"~ vhost {Key(v)}: {o.Backend} -> {v.Backend}, {v.QueueCount} queues{(v.ReadOnly ? ", read-only" : "")}");
                adds.Add(new VhostRemoved(o));
            }
            else lines.Add($"+ vhost {Key(v)}: {v.Backend}");
            adds.Add(new VhostAdded(v));
        }
        var kept = to.Vhost.Select(Key).ToHashSet(StringComparer.Ordinal);
        foreach (var (socket, o) in old.Where(x => !kept.Contains(x.Key)))
        {
            lines.Add($"- vhost {socket}: {o.Backend} (its VM loses the disk)");
            removes.Add(new VhostRemoved(o));
        }
    }

    /// <summary>Host devices by volume: a changed one (read-only or not) is detached and attached again.</summary>
    private static void HostDeviceChanges(DesiredState from, DesiredState to, List<string> lines, List<EngineChange> adds, List<EngineChange> removes)
    {
        var old = from.HostDevices.ToDictionary(h => h.Volume, StringComparer.Ordinal);
        foreach (var h in to.HostDevices)
        {
            var o = old.GetValueOrDefault(h.Volume);
            if (o != null && o.ReadOnly == h.ReadOnly && o.FileSystem == h.FileSystem && o.Mount == h.Mount) continue;
            if (o != null) adds.Add(new HostDeviceRemoved(o));
            lines.Add($"{(o == null ? "+" : "~")} host device {h.Volume}{(h.ReadOnly ? " (read-only)" : "")}{(h.IsFileSystem ? $" ({h.FileSystem} at {h.Mount})" : "")}");
            adds.Add(new HostDeviceAdded(h));
        }
        foreach (var o in from.HostDevices.Where(o => to.FindHostDevice(o.Volume) == null))
        {
            lines.Add($"- host device {o.Volume}");
            removes.Add(new HostDeviceRemoved(o));
        }
    }

    /// <summary>QoS entries set, changed or removed: lines only, the pools' QoS registry puts them in force.</summary>
    private static void QosChanges(QosSpec from, QosSpec to, List<string> lines)
    {
        foreach (var v in to.Volumes.Where(v => from.FindVolume(v.Volume) is not { } o || QosRequests.Describe(o) != QosRequests.Describe(v)))
            lines.Add($"~ qos volume {v.Volume}: {QosRequests.Describe(v)}");
        foreach (var v in from.Volumes.Where(v => to.FindVolume(v.Volume) == null))
            lines.Add($"- qos volume {v.Volume}");
        foreach (var g in to.Groups.Where(g => from.FindGroup(g.Group) is not { } o || QosRequests.Describe(o) != QosRequests.Describe(g)))
            lines.Add($"~ qos group {g.Group}: {QosRequests.Describe(g)}");
        foreach (var g in from.Groups.Where(g => to.FindGroup(g.Group) == null))
            lines.Add($"- qos group {g.Group}");
    }

    /// <summary>Same NSID, UUID and device: the running namespace can stay (a file's size option or relative spelling may differ).</summary>
    public static bool SameNamespace(NamespaceSpec a, NamespaceSpec b, string dataDirectory)
    {
        if (a.Nsid != b.Nsid || a.Uuid != b.Uuid) return false;
        if (FullFilePath(a.Backend, dataDirectory) is { } pa) return pa == FullFilePath(b.Backend, dataDirectory);
        return BackendSpec.TryParse(a.Backend, out var sa, out _) && BackendSpec.TryParse(b.Backend, out var sb, out _) && sa == sb;
    }

    /// <summary>The full path of a file backend; null for every other kind.</summary>
    public static string? FullFilePath(string backend, string dataDirectory) =>
        BackendSpec.TryParse(backend, out var spec, out _) && spec.Kind == BackendKind.File ? spec.FullPath(dataDirectory) : null;

    private static string Access(SubsystemSpec s) =>
        s.AllowAnyHost ? "any host" + (s.Hosts.Count > 0 ? $", hosts listed: {string.Join(", ", s.Hosts)}" : "")
        : s.Hosts.Count == 0 ? "no host may connect yet" : $"hosts: {string.Join(", ", s.Hosts)}";
}
