namespace EdgeBlock.Api;

// The /v1 resources, shared by the daemon (which serves them) and the CLI (which reads them).
// JSON is snake_case (ApiJson.Options).

public sealed record StatusInfo(
    string Version, int ProcessId, long UptimeSeconds, string DataDirectory, string ConfigPath, string? ApiSocket,
    int Listeners, int Subsystems, int Namespaces, int Controllers, MemoryInfo? Memory = null);

/// <summary>
/// The I/O data buffers under the memory budget (serve --memory-budget): bytes rented now, mapped now (rented plus kept
/// for reuse), the most ever rented at once, and how often a command had to wait for the budget.
/// </summary>
public sealed record MemoryInfo(long BudgetBytes, long InUseBytes, long MappedBytes, long PeakInUseBytes, long Waits);

public sealed record ListenerInfo(string Address, string? BoundAddress, int Connections);

public sealed record NamespaceInfo(uint Nsid, string Backend, Guid Uuid, long SizeBytes, int BlockSize);

public sealed record SubsystemInfo(string Nqn, bool AllowAnyHost, IReadOnlyList<string> Hosts, IReadOnlyList<NamespaceInfo> Namespaces, int Controllers,
    IReadOnlyList<HostAuthInfo>? HostAuth = null);

/// <summary>A host's DH-HMAC-CHAP settings as the API shows them: whether secrets are set, never the secrets.</summary>
public sealed record HostAuthInfo(string HostNqn, bool HasSecret, bool HasCtrlSecret, string Hash, string Dhgroup);

/// <summary>
/// Sets a host's DH-HMAC-CHAP secrets (DHHC-1 form of nvme gen-dhchap-key); the CLI reads them from a file or stdin.
/// Hash: sha256 (default) | sha384 | sha512; dhgroup: null (default) | ffdhe2048..ffdhe8192.
/// </summary>
public sealed record SetHostAuthRequest(string DhchapSecret, string? DhchapCtrlSecret = null, string? DhchapHash = null, string? DhchapDhgroup = null)
{
    /// <summary>A logged or printed request never shows the secrets.</summary>
    public override string ToString() => $"SetHostAuthRequest {{ secrets hidden, hash {DhchapHash ?? "sha256"}, dhgroup {DhchapDhgroup ?? "null"} }}";
}

/// <summary>A connected controller: which host, to which subsystem, with how many queues (admin included), from where.</summary>
public sealed record HostInfo(ushort Cntlid, string HostNqn, string Subsystem, int Queues, string? RemoteAddress, DateTimeOffset ConnectedAt);

public sealed record AddListenerRequest(string Address);

public sealed record CreateSubsystemRequest(string Nqn, bool AllowAnyHost = false, IReadOnlyList<string>? Hosts = null);

public sealed record AddHostRequest(string HostNqn, SetHostAuthRequest? Dhchap = null);

/// <summary><see cref="Force"/>: export a block device even though it carries a file system or partition signature.</summary>
public sealed record AddNamespaceRequest(string Backend, uint? Nsid = null, Guid? Uuid = null, bool Force = false);

/// <summary><see cref="Force"/>: as for a namespace, a block device with a signature is exported anyway.</summary>
public sealed record AddVhostRequest(string? Socket, string? Backend, int? Queues = null, bool? ReadOnly = null, bool Force = false);

/// <summary>
/// A vhost-user-blk export. State: <c>waiting</c> (listening, no VM connected), <c>connected</c>, or
/// <c>unavailable</c> (its backend could not be opened at start: <see cref="LastDisconnectReason"/> says why).
/// Requests and bytes count since the daemon started serving it (every VM session).
/// </summary>
public sealed record VhostInfo(
    string Socket, string Backend, int Queues, bool ReadOnly, long SizeBytes, int BlockSize, string State, int Connections,
    string? LastDisconnectReason, long Requests = 0, long FailedRequests = 0, long BytesRead = 0, long BytesWritten = 0);

/// <summary>What a backend string in a request may say (namespaces and vhost exports).</summary>
public static class Backends
{
    public const string Syntax = "null[:SIZE] | memory:SIZE | file:PATH[:SIZE] | volume:POOL/NAME";
}

/// <summary>How many virtqueues a vhost export offers when the request does not say, and at most.</summary>
public static class VhostQueues
{
    public const int Default = 8;
    public const int Max = 64;
}

/// <summary>The documents `config import|export` move (<see cref="ConfigImportRequest.Format"/>, GET /v1/config?format=).</summary>
public static class ConfigFormats
{
    public const string Nvmetcli = "nvmetcli";
    public const string EdgeBlock = "edgeblock";
}

/// <summary>POST /v1/host/devices: attach a volume (POOL/NAME) to this host as a block device.</summary>
public sealed record AttachHostDeviceRequest(string? Volume, bool? ReadOnly = null);

/// <summary>
/// A volume attached to this host. State: <c>attached</c> (<see cref="Device"/> is /dev/ublkbN) or <c>unavailable</c>
/// (<see cref="Reason"/> says why: no ublk in this kernel, the pool did not open...). Counts since it was attached.
/// </summary>
public sealed record HostDeviceInfo(
    string Volume, bool ReadOnly, string? Device, string State, string? Reason, long SizeBytes,
    long Requests = 0, long FailedRequests = 0, long BytesRead = 0, long BytesWritten = 0, string? FileSystem = null, string? Mount = null);

/// <summary>
/// POST /v1/host/filesystems: a new thin volume of <see cref="Size"/> (the file system's quota; <see cref="Group"/>
/// caps a set of them), attached to this host, with a file system (<see cref="Fs"/>: ext4 by default, or xfs)
/// mounted at <see cref="Mount"/> (an empty or missing directory) with discard. Kept: mounted again at each start.
/// </summary>
public sealed record CreateFileSystemRequest(string? Volume, string? Size, string? Mount, string? Fs = null, string? Group = null);
