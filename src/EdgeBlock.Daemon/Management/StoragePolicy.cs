using System.Runtime.InteropServices;
using EdgeBlock.Daemon.Pools;
using EdgeBlock.Interop;

namespace EdgeBlock.Daemon.Management;

/// <summary>A path or size the storage policy refuses: the message names the path and the rule; <see cref="InUse"/> for a 409 (busy) rather than a 400.</summary>
public readonly record struct PolicyRefusal(string Message, bool InUse = false);

/// <summary>
/// The storage policy: what a client of the management API may make the daemon open, create or overwrite.
/// Namespace and vhost backends and pool drives are block devices the kernel does not use, or files under the
/// data directory or a directory of the config's <c>storage_roots</c>; never the daemon's own files (config and
/// its temporary file, the API socket, pool metadata) nor what another export or pool uses. Vhost sockets live
/// under the data directory, the runtime directory or a storage root. Memory backends stay under a cap. A path
/// is judged by where it really leads (realpath of its existing part: symbolic links and ".." resolved).
/// Every entry point asks here — API changes, import, reload, start (<see cref="Refusals"/>) and pools
/// (<see cref="CheckPoolDrive"/>) — so the rules live in this one place.
/// </summary>
public sealed partial class StoragePolicy
{
    private readonly string _dataDirectory;
    private readonly string _configPath;
    private readonly string? _apiSocket;
    private readonly PoolManager? _pools;

    public StoragePolicy(string dataDirectory, string configPath, string? apiSocket = null, PoolManager? pools = null, long? memoryLimitBytes = null)
    {
        _dataDirectory = Path.GetFullPath(dataDirectory);
        _configPath = Path.GetFullPath(configPath);
        _apiSocket = apiSocket == null ? null : Path.GetFullPath(apiSocket);
        _pools = pools;
        MemoryLimitBytes = memoryLimitBytes ?? DefaultMemoryLimit();
    }

    /// <summary>
    /// Most bytes all memory backends together may declare. Each can be filled to its size by the hosts that
    /// write to it, so the sum must be memory the host can spare: half of what the runtime sees (physical RAM,
    /// or the cgroup's limit), leaving the rest for the daemon's caches and maps and for the VMs themselves.
    /// </summary>
    public long MemoryLimitBytes { get; }

    public static long DefaultMemoryLimit() => GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 2;

    /// <summary>Where vhost sockets may live besides the data directory and the roots: /run/edgeblock as root, else $XDG_RUNTIME_DIR/edgeblock.</summary>
    public static string? RuntimeDirectory()
    {
        if (Environment.IsPrivilegedProcess) return "/run/edgeblock";
        string? runtime = Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR");
        return string.IsNullOrEmpty(runtime) ? null : Path.Combine(runtime, "edgeblock");
    }

    // ---- entry points -------------------------------------------------------------------------------

    /// <summary>
    /// Refusals for the exports of <paramref name="candidate"/> that <paramref name="running"/> does not have as
    /// they are (new ones, or a changed backend): what the API, an import or a reload would add. Exports already
    /// running were admitted before and are not judged again (a guest writes partition tables on its disk).
    /// <paramref name="checkContents"/>: a block device carrying a file system or partition signature is refused
    /// (the API's --force turns this off; a hand-edited config is its author's decision).
    /// </summary>
    public List<PolicyRefusal> Check(DesiredState candidate, DesiredState? running, bool checkContents)
    {
        var refusals = new List<PolicyRefusal>();
        var admitted = running == null ? [] : Exports(running).Select(e => e.Key).ToHashSet(StringComparer.Ordinal);
        foreach (var (key, field, backend, socket) in Exports(candidate))
        {
            if (admitted.Contains(key)) continue;
            if (Refusal(candidate, field, backend, socket, checkContents) is { } r) refusals.Add(r);
        }
        long before = running == null ? 0 : MemoryBytes(running);
        long after = MemoryBytes(candidate);
        if (after > MemoryLimitBytes && after > before) refusals.Add(new PolicyRefusal(MemoryMessage(after)));
        return refusals;
    }

    /// <summary>
    /// At start: each export of the config the policy refuses (by <see cref="NamespaceKey"/> or <see cref="VhostKey"/>), with why. The engine
    /// leaves them out (logged, shown as unavailable) and serves the rest, as for a volume whose pool did not open.
    /// </summary>
    public Dictionary<string, string> Refusals(DesiredState state)
    {
        var refused = new Dictionary<string, string>(StringComparer.Ordinal);
        long memory = 0;
        foreach (var (key, field, backend, socket) in Exports(state))
        {
            if (Refusal(state, field, backend, socket, checkContents: false) is { } r) refused[key] = r.Message;
            else if (BackendSpec.TryParse(backend, out var b, out _) && b.Kind == BackendKind.Memory)
            {
                memory = Add(memory, b.SizeBytes ?? 0);
                if (memory > MemoryLimitBytes) refused[key] = MemoryMessage(memory);
            }
        }
        return refused;
    }

    /// <summary>
    /// A new pool drive (<c>pool create</c>, <c>pool add-drive</c>): where it may be, that no export, pool or
    /// daemon file uses it, and — unless <paramref name="force"/> — that it holds no data or signature. Another
    /// pool's label is left to the pool, which refuses it without --force naming the pool.
    /// </summary>
    public PolicyRefusal? CheckPoolDrive(string path, bool force, DesiredState exports)
    {
        string full = Path.GetFullPath(path, _dataDirectory);
        if (PathRefusal($"drive {full}", full, exports, out string real, out _) is { } refusal) return refusal;
        if (BackedExport(exports, real, except: null) is { } backed)
            return new PolicyRefusal($"drive {full}: it backs {backed}; a drive is no export's backend", InUse: true);
        if (force || !File.Exists(real)) return null;
        byte[] head = ReadHead(real, out string? error);
        if (error != null) return new PolicyRefusal($"drive {full}: cannot be read to check what it holds: {error}");
        if (EdgeBlock.Volumes.PoolLayout.ParseLabel(head, out _) != null) return null;
        if (DiskProbe.Signature(head) is { } what)
            return new PolicyRefusal($"drive {full}: it holds {what}; a pool overwrites it: add --force if its data may be lost");
        if (DiskProbe.HoldsData(head))
            return new PolicyRefusal($"drive {full}: it holds data (non-zero bytes in its first MiB); a pool overwrites it: add --force if its data may be lost");
        return null;
    }

    /// <summary>
    /// An image file that `image import` reads (<paramref name="create"/> false: it must exist) or `image export`
    /// creates (true: it must not exist, and only a regular file is made): the same places as file backends, never a
    /// daemon file, a pool drive or an export's backend (its guest may be writing it).
    /// </summary>
    public PolicyRefusal? CheckImageFile(string path, bool create, DesiredState state)
    {
        string full = Path.GetFullPath(path, _dataDirectory);
        string what = $"image {full}";
        if (PathRefusal(what, full, state, out string real, out bool device) is { } refusal) return refusal;
        if (BackedExport(state, real, except: null) is { } backed)
            return new PolicyRefusal($"{what}{Via(full, real)}: it backs {backed}; export a snapshot of a volume instead", InUse: true);
        bool exists = device || File.Exists(real);
        if (create && exists) return new PolicyRefusal($"{what}{Via(full, real)}: it already exists; choose a new file name (an export never overwrites)", InUse: true);
        if (!create && !exists) return new PolicyRefusal($"{what}: no such file");
        return null;
    }

    /// <summary>Where Ceph's own tools keep conf files and keyrings; a Ceph pool's files may be there besides the data directory and the roots.</summary>
    public const string CephConfigDirectory = "/etc/ceph";

    /// <summary>
    /// A Ceph conf file or keyring of <c>pool create --ceph</c> (<paramref name="what"/>: "Ceph configuration", "keyring"):
    /// librados opens it as the daemon, so like any path from the API it must be an existing regular file under
    /// /etc/ceph, the data directory or a storage root (judged where it really leads), and never a daemon file.
    /// What a keyring must be besides (owner, mode) is checked where it is used, on every connect.
    /// </summary>
    public PolicyRefusal? CheckCephFile(string what, string path, DesiredState state)
    {
        string full = Path.GetFullPath(path, _dataDirectory);
        string real = RealPath(full);
        what = $"{what} {full}{Via(full, real)}";
        if (OwnFile(real) is { } own) return new PolicyRefusal($"{what}: it is {own}; the daemon's own files are never Ceph's");
        if (!Roots(state).Append(RealPath(_dataDirectory)).Append(RealPath(CephConfigDirectory)).Any(root => IsUnder(real, root)))
            return new PolicyRefusal($"{what}: Ceph files must be under {CephConfigDirectory}, the data directory {_dataDirectory} or a storage root "
                                     + $"({RootList(state)}); add its directory to storage_roots in {_configPath} to allow it");
        if (Native.Stat(real, Native.STATX_TYPE, out var st) != 0) return new PolicyRefusal($"{what}: no such file");
        if (!st.IsRegularFile) return new PolicyRefusal($"{what}: it is not a regular file");
        return null;
    }

    /// <summary>A vhost socket path: under the data directory, the runtime directory or a storage root, and not an existing file of another kind.</summary>
    public PolicyRefusal? CheckSocket(string socket, DesiredState state)
    {
        string full = Path.GetFullPath(socket, _dataDirectory);
        string real = RealPath(full);
        if (OwnFile(real) is { } own) return new PolicyRefusal($"vhost socket {full}: it is {own}; choose another path");
        var allowed = Roots(state).Append(RealPath(_dataDirectory)).Concat(RuntimeDirectory() is { } r ? [RealPath(r)] : []).ToList();
        if (!allowed.Any(root => IsUnder(real, root)))
            return new PolicyRefusal($"vhost socket {full}{Via(full, real)}: it is outside the data directory {_dataDirectory}, the runtime directory "
                                     + $"and the storage roots ({RootList(state)}); choose a path under one of them");
        if (Native.Stat(real, Native.STATX_TYPE, out var st) == 0 && !st.IsSocket)
            return new PolicyRefusal($"vhost socket {full}: a file that is not a socket is there (serving would replace it); choose another path");
        return null;
    }

    // ---- rules ---------------------------------------------------------------------------------------

    private PolicyRefusal? Refusal(DesiredState state, string field, string backend, string? socket, bool checkContents)
    {
        if (socket != null && CheckSocket(socket, state) is { } s) return s with { Message = $"{field}: {s.Message}" };
        if (!BackendSpec.TryParse(backend, out var spec, out _) || spec.Kind != BackendKind.File) return null;
        string full = spec.FullPath(_dataDirectory);
        string what = $"{field}: backend {full}";
        if (PathRefusal(what, full, state, out string real, out bool device) is { } refusal) return refusal;
        if (BackedExport(state, real, except: field) is { } other)
            return new PolicyRefusal($"{what}{Via(full, real)}: it already backs {other}; a file or device backs one export", InUse: true);
        if (!device || !checkContents) return null;
        byte[] head = ReadHead(real, out string? error);
        if (error == null && DiskProbe.Signature(head) is { } sig)
            return new PolicyRefusal($"{what}: the device holds {sig}; add --force to export it anyway");
        return null;
    }

    /// <summary>
    /// The rules every backend and drive path obeys: a block device the kernel does not use, or a regular file
    /// (or a new one) under the data directory or a storage root; never a daemon file nor another pool's drive.
    /// </summary>
    private PolicyRefusal? PathRefusal(string what, string full, DesiredState state, out string real, out bool device)
    {
        real = RealPath(full);
        device = false;
        if (OwnFile(real) is { } own) return new PolicyRefusal($"{what}{Via(full, real)}: it is {own}; the daemon's own files are never storage");
        if (PoolDrive(real) is { } drive) return new PolicyRefusal($"{what}{Via(full, real)}: it is {drive}", InUse: true);
        if (Native.Stat(real, Native.STATX_TYPE, out var st) == 0)
        {
            if (st.IsBlockDevice)
            {
                device = true;
                return DiskProbe.InUse(real, st.RdevMajor, st.RdevMinor) is { } use
                    ? new PolicyRefusal($"{what}{Via(full, real)}: the block device is in use: {use}", InUse: true) : null;
            }
            if (!st.IsRegularFile) return new PolicyRefusal($"{what}{Via(full, real)}: it is neither a regular file nor a block device");
        }
        string target = real;
        if (!Roots(state).Append(RealPath(_dataDirectory)).Any(root => IsUnder(target, root)))
            return new PolicyRefusal($"{what}{Via(full, real)}: files must be under the data directory {_dataDirectory} or a storage root "
                                     + $"({RootList(state)}); add its directory to storage_roots in {_configPath} to allow it");
        return null;
    }

    /// <summary>The export (field and backend) whose file backend leads to <paramref name="real"/>, other than <paramref name="except"/>.</summary>
    private string? BackedExport(DesiredState state, string real, string? except)
    {
        foreach (var (_, field, backend, _) in Exports(state))
            if (field != except && BackendSpec.TryParse(backend, out var b, out _) && b.Kind == BackendKind.File && RealPath(b.FullPath(_dataDirectory)) == real)
                return except == null ? $"{field} ({backend})" : field;
        return null;
    }

    /// <summary>What of the daemon's own a path is: its config (or the config's temporary file), its API socket, pool metadata.</summary>
    private string? OwnFile(string real)
    {
        string config = RealPath(_configPath);
        if (real == config) return "the daemon's config file";
        if (Path.GetDirectoryName(real) == Path.GetDirectoryName(config) && Path.GetFileName(real).StartsWith($".{Path.GetFileName(config)}.", StringComparison.Ordinal))
            return "a temporary file of the daemon's config";
        if (_apiSocket != null && real == RealPath(_apiSocket)) return "the daemon's API socket";
        string pools = RealPath(Path.Combine(_dataDirectory, "pools"));
        if (IsUnder(real, pools)) return "pool metadata (the pools' RocksDB directory)";
        return null;
    }

    private string? PoolDrive(string real)
    {
        if (_pools == null) return null;
        foreach (var pool in _pools.Infos())
            foreach (var d in pool.Drives)
                if (RealPath(d.Path) == real) return $"drive {d.Index} of pool {pool.Name}";
        return null;
    }

    private static byte[] ReadHead(string real, out string? error)
    {
        error = null;
        try
        {
            return DiskProbe.ReadHead(real);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            error = ex.Message;
            return [];
        }
    }

    // ---- helpers -------------------------------------------------------------------------------------

    /// <summary>Every export with a key that changes when its backend (or socket) does, the field that names it, its backend and (vhost) socket.</summary>
    private IEnumerable<(string Key, string Field, string Backend, string? Socket)> Exports(DesiredState state)
    {
        foreach (var s in state.Subsystems ?? [])
            foreach (var ns in s?.Namespaces ?? [])
                if (ns != null) yield return (NamespaceKey(s!.Nqn, ns.Nsid, ns.Backend), $"namespace {ns.Nsid} of {s.Nqn}", ns.Backend ?? "", null);
        foreach (var v in state.Vhost ?? [])
            if (v != null) yield return (VhostKey(Path.GetFullPath(v.Socket ?? "", _dataDirectory), v.Backend), $"vhost export {v.Socket}", v.Backend ?? "", v.Socket ?? "");
    }

    /// <summary>How <see cref="Refusals"/> names a namespace: a changed backend is another export.</summary>
    public static string NamespaceKey(string nqn, uint nsid, string? backend) => $"ns {nqn} {nsid} {backend}";

    /// <summary>How <see cref="Refusals"/> names a vhost export (its absolute socket path).</summary>
    public static string VhostKey(string socket, string? backend) => $"vhost {socket} {backend}";

    public static string HostDeviceKey(string volume) => $"host-device {volume}";

    private static long MemoryBytes(DesiredState state)
    {
        long total = 0;
        foreach (string? backend in (state.Subsystems ?? []).SelectMany(s => s?.Namespaces ?? []).Select(n => n?.Backend)
                     .Concat((state.Vhost ?? []).Select(v => v?.Backend)))
            if (BackendSpec.TryParse(backend, out var b, out _) && b.Kind == BackendKind.Memory) total = Add(total, b.SizeBytes ?? 0);
        return total;
    }

    private static long Add(long a, long b) => a > long.MaxValue - b ? long.MaxValue : a + b;

    private string MemoryMessage(long total) =>
        $"memory backends would declare {Sizes.Format(total)} in all, over the limit of {Sizes.Format(MemoryLimitBytes)} "
        + "(half of the memory this daemon may use); use a smaller size, or a file or volume backend";

    private IEnumerable<string> Roots(DesiredState state) =>
        (state.StorageRoots ?? []).Where(r => Path.IsPathFullyQualified(r ?? "")).Select(r => RealPath(Path.GetFullPath(r)));

    private static string RootList(DesiredState state) => state.StorageRoots is { Count: > 0 } roots ? string.Join(", ", roots) : "none configured";

    internal static string Via(string full, string real) => full == real ? "" : $" (which leads to {real})";

    /// <summary>Whether a real path is root or below it.</summary>
    internal static bool IsUnder(string real, string root)
    {
        string r = Path.TrimEndingDirectorySeparator(root);
        return real == r || real.StartsWith(r == "/" ? "/" : r + "/", StringComparison.Ordinal);
    }

    /// <summary>Where a path really leads: realpath(3) of its longest existing part (links and ".." resolved), the rest appended.</summary>
    public static string RealPath(string path)
    {
        string full = Path.GetFullPath(path);
        var rest = new Stack<string>();
        for (string? existing = full; existing != null; existing = Path.GetDirectoryName(existing))
        {
            nint resolved = RealPathRaw(existing, 0);
            if (resolved != 0)
            {
                string real = Marshal.PtrToStringUTF8(resolved)!;
                Free(resolved);
                while (rest.Count > 0) real = Path.Combine(real, rest.Pop());
                return real;
            }
            rest.Push(Path.GetFileName(existing));
        }
        return full;
    }

    [LibraryImport("libc", EntryPoint = "realpath", StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint RealPathRaw(string path, nint resolved);

    [LibraryImport("libc", EntryPoint = "free")]
    private static partial void Free(nint pointer);
}
