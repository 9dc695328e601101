using System.Text.Json;
using System.Text.Json.Serialization;

namespace EdgeBlock.Daemon.Management;

/// <summary>
/// The desired state of the daemon, as kept in the config file (<c>edgeblock.json</c>): what the
/// engine (<see cref="ITargetEngine"/>) serves at start and after every API change.
/// </summary>
public sealed class DesiredState
{
    public int Version { get; set; } = 1;
    public List<ListenerSpec> Listeners { get; set; } = [];
    public List<SubsystemSpec> Subsystems { get; set; } = [];
    /// <summary>vhost-user-blk exports: a backend served to a VM (QEMU vhost-user-blk-pci) over a Unix socket.</summary>
    public List<VhostSpec> Vhost { get; set; } = [];
    /// <summary>
    /// Directories whose files may be backends and pool drives, besides the data directory (<see cref="StoragePolicy"/>).
    /// Set by editing the file (or `serve --storage-root`), never through the API: an import keeps the running list.
    /// </summary>
    public List<string>? StorageRoots { get; set; }

    public DesiredState Clone() =>
        JsonSerializer.Deserialize<DesiredState>(JsonSerializer.SerializeToUtf8Bytes(this, ConfigJson.Options), ConfigJson.Options)!;

    public SubsystemSpec? FindSubsystem(string nqn) => Subsystems.FirstOrDefault(s => s.Nqn == nqn);

    public VhostSpec? FindVhost(string socket) => Vhost.FirstOrDefault(v => v.Socket == socket);
}

/// <summary>An NVMe/TCP port: "ADDRESS:PORT" (IPv6 as "[::1]:4420").</summary>
public sealed class ListenerSpec
{
    public string Address { get; set; } = "";
}

public sealed class SubsystemSpec
{
    public string Nqn { get; set; } = "";
    /// <summary>When true any host may connect; otherwise only <see cref="Hosts"/>.</summary>
    public bool AllowAnyHost { get; set; }
    public List<string> Hosts { get; set; } = [];
    public List<NamespaceSpec> Namespaces { get; set; } = [];
}

public sealed class NamespaceSpec
{
    public uint Nsid { get; set; }
    /// <summary>null[:SIZE] | memory:SIZE | file:PATH[:SIZE] (a relative PATH is under the data directory).</summary>
    public string Backend { get; set; } = "";
    /// <summary>Namespace UUID (and NGUID); generated once and kept in the config so hosts see the same disk after a restart.</summary>
    public Guid? Uuid { get; set; }
}

public sealed class VhostSpec
{
    /// <summary>The Unix socket QEMU connects to, absolute (the API takes a path relative to the data directory too).</summary>
    public string Socket { get; set; } = "";
    /// <summary>Same syntax as a namespace's backend.</summary>
    public string Backend { get; set; } = "";
    /// <summary>Most virtqueues the VM may use (its num-queues must not exceed it); default <see cref="DefaultQueues"/>.</summary>
    public int? Queues { get; set; }
    public bool ReadOnly { get; set; }

    public const int DefaultQueues = VhostQueues.Default;
    public const int MaxQueues = VhostQueues.Max;
    public int QueueCount => Queues ?? DefaultQueues;
}

/// <summary>The config file is JSON with the API's settings (<see cref="ApiJson"/>): snake_case, unknown fields refused.</summary>
public static class ConfigJson
{
    public static JsonSerializerOptions Options => ApiJson.Options;

    public static JsonSerializerOptions Configure(JsonSerializerOptions o) => ApiJson.Configure(o);
}
