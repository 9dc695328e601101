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
    /// <summary>Volumes served to this host's own kernel as block devices (ublk): attached again at every start.</summary>
    public List<HostDeviceSpec> HostDevices { get; set; } = [];
    /// <summary>
    /// Directories whose files may be backends and pool drives, besides the data directory (<see cref="StoragePolicy"/>).
    /// Set by editing the file (or `serve --storage-root`), never through the API: an import keeps the running list.
    /// </summary>
    public List<string>? StorageRoots { get; set; }
    /// <summary>Limits and weights of volumes, limits of groups (<see cref="QosSpec"/>); null: none (left out of the file).</summary>
    public QosSpec? Qos { get; set; }

    public DesiredState Clone() =>
        JsonSerializer.Deserialize<DesiredState>(JsonSerializer.SerializeToUtf8Bytes(this, ConfigJson.Options), ConfigJson.Options)!;

    public SubsystemSpec? FindSubsystem(string nqn) => Subsystems.FirstOrDefault(s => s.Nqn == nqn);

    public VhostSpec? FindVhost(string socket) => Vhost.FirstOrDefault(v => v.Socket == socket);

    public HostDeviceSpec? FindHostDevice(string volume) => HostDevices.FirstOrDefault(h => h.Volume == volume);
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
    /// <summary>DH-HMAC-CHAP secrets of listed hosts (a host with an entry must authenticate).</summary>
    public List<HostAuthSpec> HostAuth { get; set; } = [];
    public List<NamespaceSpec> Namespaces { get; set; } = [];

    public HostAuthSpec? FindHostAuth(string hostNqn) => HostAuth.FirstOrDefault(a => a.HostNqn == hostNqn);
}

/// <summary>
/// A host's in-band authentication (NVMe DH-HMAC-CHAP): its secret and optionally the controller's, in the
/// DHHC-1 form of nvme gen-dhchap-key, and the hash and DH group the controller chooses. The config file is
/// private (0600); the API never returns the secrets.
/// </summary>
public sealed class HostAuthSpec
{
    public string HostNqn { get; set; } = "";
    public string DhchapSecret { get; set; } = "";
    public string? DhchapCtrlSecret { get; set; }
    /// <summary>sha256 (default), sha384, sha512.</summary>
    public string? DhchapHash { get; set; }
    /// <summary>null (default), ffdhe2048, ffdhe3072, ffdhe4096, ffdhe6144, ffdhe8192.</summary>
    public string? DhchapDhgroup { get; set; }

    /// <summary>The target's form; null with a problem naming the field when something does not parse.</summary>
    public Target.HostAuthentication? ToTarget(out string problem)
    {
        problem = "";
        if (!Nvme.Auth.DhchapKey.TryParse(DhchapSecret, out var host, out string why)) { problem = $"dhchap_secret: {why}"; return null; }
        Nvme.Auth.DhchapKey? ctrl = null;
        if (DhchapCtrlSecret != null && !Nvme.Auth.DhchapKey.TryParse(DhchapCtrlSecret, out ctrl, out why)) { problem = $"dhchap_ctrl_secret: {why}"; return null; }
        var hash = Nvme.Auth.DhchapHash.Sha256;
        if (DhchapHash != null && !Nvme.Auth.DhchapNames.TryParseHash(DhchapHash, out hash)) { problem = $"dhchap_hash: '{DhchapHash}' is not sha256, sha384 or sha512"; return null; }
        var group = Nvme.Auth.DhchapDhGroup.Null;
        if (DhchapDhgroup != null && !Nvme.Auth.DhchapNames.TryParseGroup(DhchapDhgroup, out group)) { problem = $"dhchap_dhgroup: '{DhchapDhgroup}' is not null, ffdhe2048, ffdhe3072, ffdhe4096, ffdhe6144 or ffdhe8192"; return null; }
        return new Target.HostAuthentication(host!, ctrl, hash, group);
    }

    public bool SameAs(HostAuthSpec o) => HostNqn == o.HostNqn && DhchapSecret == o.DhchapSecret && DhchapCtrlSecret == o.DhchapCtrlSecret
        && DhchapHash == o.DhchapHash && DhchapDhgroup == o.DhchapDhgroup;
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

/// <summary>
/// A volume attached to this host as /dev/ublkbN (the kernel picks N at each attach); with <see cref="Mount"/>, a file
/// system of this host (`fs create`): made on first attach, mounted at each attach, unmounted before detach.
/// </summary>
public sealed class HostDeviceSpec
{
    /// <summary>POOL/NAME.</summary>
    public string Volume { get; set; } = "";
    public bool ReadOnly { get; set; }

    /// <summary>ext4 or xfs when the device carries a file system of this host, else null.</summary>
    public string? FileSystem { get; set; }

    /// <summary>Where that file system is mounted (absolute), else null.</summary>
    public string? Mount { get; set; }

    public bool IsFileSystem => Mount != null;

    public string Backend => $"volume:{Volume}";
}

/// <summary>The config file is JSON with the API's settings (<see cref="ApiJson"/>): snake_case, unknown fields refused.</summary>
public static class ConfigJson
{
    public static JsonSerializerOptions Options => ApiJson.Options;

    public static JsonSerializerOptions Configure(JsonSerializerOptions o) => ApiJson.Configure(o);
}
