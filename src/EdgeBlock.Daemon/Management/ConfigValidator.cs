using System.Net;
using EdgeBlock.Nvme;

namespace EdgeBlock.Daemon.Management;

/// <summary>
/// Checks a whole desired state before anything is applied. Each error names the field (as a
/// JSON path), its value and why it is refused.
/// </summary>
public static class ConfigValidator
{
    public static List<string> Validate(DesiredState state, string dataDirectory)
    {
        var errors = new List<string>();
        if (state.Version != 1) errors.Add($"version: {state.Version} is not supported (this daemon reads version 1)");
        // An explicit null is refused, not read as empty: with --replace it would remove everything.
        RefuseNull(state.Listeners, "listeners", errors);
        RefuseNull(state.Subsystems, "subsystems", errors);
        RefuseNull(state.Vhost, "vhost", errors);
        RefuseNull(state.HostDevices, "host_devices", errors);
        for (int i = 0; i < (state.StorageRoots?.Count ?? 0); i++)
            if (state.StorageRoots![i] is not { } root || !Path.IsPathFullyQualified(root))
                errors.Add($"storage_roots[{i}]: '{state.StorageRoots[i]}' is not an absolute directory path");
        var listeners = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < (state.Listeners?.Count ?? 0); i++)
        {
            string field = $"listeners[{i}].address";
            string? address = state.Listeners![i]?.Address;
            if (!TryParseEndPoint(address, out var ep, out string why)) errors.Add($"{field}: '{address}' {why}");
            else if (!listeners.Add(ep.ToString())) errors.Add($"{field}: '{address}' is listed twice");
        }
        var nqns = new HashSet<string>(StringComparer.Ordinal);
        var volumes = new Dictionary<string, string>(StringComparer.Ordinal); // volume backend -> where it is exported
        var uuids = new HashSet<Guid>(); // across subsystems: a host tells namespaces apart by UUID/NGUID
        for (int i = 0; i < (state.Subsystems?.Count ?? 0); i++)
        {
            var s = state.Subsystems![i];
            string at = $"subsystems[{i}]";
            if (s == null) { errors.Add($"{at}: is null"); continue; }
            RefuseNull(s.Hosts, $"{at}.hosts", errors);
            RefuseNull(s.Namespaces, $"{at}.namespaces", errors);
            if (!Nqn.IsValid(s.Nqn ?? "", out string why)) errors.Add($"{at}.nqn: '{s.Nqn}' is not a valid NQN: {why}");
            else if (s.Nqn == Nqn.Discovery) errors.Add($"{at}.nqn: '{s.Nqn}' is the discovery subsystem's NQN; choose another");
            else if (!nqns.Add(s.Nqn!)) errors.Add($"{at}.nqn: '{s.Nqn}' is listed twice");
            var hosts = new HashSet<string>(StringComparer.Ordinal);
            for (int h = 0; h < (s.Hosts?.Count ?? 0); h++)
            {
                string host = s.Hosts![h] ?? "";
                if (!Nqn.IsValid(host, out string hwhy)) errors.Add($"{at}.hosts[{h}]: '{host}' is not a valid host NQN: {hwhy}");
                else if (!hosts.Add(host)) errors.Add($"{at}.hosts[{h}]: '{host}' is listed twice");
            }
            for (int a = 0; a < (s.HostAuth?.Count ?? 0); a++)
            {
                var auth = s.HostAuth![a];
                string aat = $"{at}.host_auth[{a}]";
                if (auth == null) { errors.Add($"{aat}: is null"); continue; }
                if (!hosts.Contains(auth.HostNqn ?? "")) errors.Add($"{aat}.host_nqn: '{auth.HostNqn}' is not in {at}.hosts (add the host first)");
                else if (s.HostAuth.Take(a).Any(o => o?.HostNqn == auth.HostNqn)) errors.Add($"{aat}.host_nqn: '{auth.HostNqn}' has two entries");
                if (auth.ToTarget(out string problem) == null) errors.Add($"{aat}.{problem}");
            }
            var nsids = new HashSet<uint>();
            for (int n = 0; n < (s.Namespaces?.Count ?? 0); n++)
            {
                var ns = s.Namespaces![n];
                string nat = $"{at}.namespaces[{n}]";
                if (ns == null) { errors.Add($"{nat}: is null"); continue; }
                if (ns.Nsid is 0 or > Target.Subsystem.MaxNsid) errors.Add($"{nat}.nsid: {ns.Nsid} is out of range (1..{Target.Subsystem.MaxNsid})");
                else if (!nsids.Add(ns.Nsid)) errors.Add($"{nat}.nsid: {ns.Nsid} is listed twice in {s.Nqn}");
                if (!BackendSpec.TryParse(ns.Backend, out var backend, out string berr)) errors.Add($"{nat}.backend: {berr}");
                else if (!backend.TryCheck(dataDirectory, out string cerr)) errors.Add($"{nat}.backend: '{ns.Backend}': {cerr}");
                else if (backend.Kind == BackendKind.Volume && !volumes.TryAdd(backend.Path!, $"namespace {ns.Nsid} of {s.Nqn}"))
                {
                    errors.Add($"{nat}.backend: volume {backend.Path} is already exported as {volumes[backend.Path!]}; a volume is exported once");
                    continue; // its UUID (the volume's) is a duplicate too: one message is enough
                }
                if (ns.Uuid is { } u && (u == Guid.Empty || !uuids.Add(u))) errors.Add($"{nat}.uuid: '{u}' is empty or already used by another namespace");
            }
        }
        ValidateVhost(state, dataDirectory, volumes, errors);
        ValidateHostDevices(state, volumes, errors);
        QosValidator.Validate(state.Qos, errors);
        return errors;
    }

    private static void ValidateHostDevices(DesiredState state, Dictionary<string, string> volumes, List<string> errors)
    {
        var mounts = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < (state.HostDevices?.Count ?? 0); i++)
        {
            var h = state.HostDevices![i];
            string at = $"host_devices[{i}]";
            if (h == null) { errors.Add($"{at}: is null"); continue; }
            if (!HostDevicePaths.IsVolume(h.Volume, out string why)) errors.Add($"{at}.volume: {why}");
            else if (!volumes.TryAdd(h.Volume, $"host device {h.Volume}"))
                errors.Add($"{at}.volume: volume {h.Volume} is already exported as {volumes[h.Volume]}; a volume is exported once");
            if (h.FileSystem == null && h.Mount == null) continue;
            if (h.FileSystem == null || !HostFileSystem.Types.Contains(h.FileSystem))
                errors.Add($"{at}.file_system: give one of {string.Join(", ", HostFileSystem.Types)} with a mount");
            if (h.Mount == null || !Path.IsPathFullyQualified(h.Mount)) errors.Add($"{at}.mount: give an absolute directory with a file system");
            else if (HostFileSystem.PlaceRefusal(h.Mount) is { } place) errors.Add($"{at}.mount: {place}");
            else if (!mounts.Add(h.Mount)) errors.Add($"{at}.mount: {h.Mount} is the mount point of another file system");
            if (h.ReadOnly && h.IsFileSystem) errors.Add($"{at}: a file system of this host is not read-only");
        }
    }

    private static void RefuseNull<T>(List<T>? list, string field, List<string> errors)
    {
        if (list == null) errors.Add($"{field}: is null; give a list ([] for none)");
    }

    private static void ValidateVhost(DesiredState state, string dataDirectory, Dictionary<string, string> volumes, List<string> errors)
    {
        var sockets = new HashSet<string>(StringComparer.Ordinal);
        var files = new Dictionary<string, string>(StringComparer.Ordinal); // backing file -> which export uses it
        foreach (var s in state.Subsystems ?? [])
            foreach (var ns in s?.Namespaces ?? [])
                if (ns != null && BackendSpec.TryParse(ns.Backend, out var b, out _) && b.Kind == BackendKind.File)
                    files.TryAdd(b.FullPath(dataDirectory), $"namespace {ns.Nsid} of {s!.Nqn}");
        for (int i = 0; i < (state.Vhost?.Count ?? 0); i++)
        {
            var v = state.Vhost![i];
            string at = $"vhost[{i}]";
            if (v == null) { errors.Add($"{at}: is null"); continue; }
            if (!VhostSocket.TryResolve(v.Socket, dataDirectory, out string socket, out string why)) errors.Add($"{at}.socket: {why}");
            else if (!sockets.Add(socket)) errors.Add($"{at}.socket: '{socket}' is listed twice");
            if (v.Queues is { } q && (q < 1 || q > VhostSpec.MaxQueues)) errors.Add($"{at}.queues: {q} is out of range (1..{VhostSpec.MaxQueues})");
            if (!BackendSpec.TryParse(v.Backend, out var backend, out string berr)) errors.Add($"{at}.backend: {berr}");
            else if (!backend.TryCheck(dataDirectory, out string cerr)) errors.Add($"{at}.backend: '{v.Backend}': {cerr}");
            else if (backend.Kind == BackendKind.Volume && !volumes.TryAdd(backend.Path!, $"vhost socket {v.Socket}"))
                errors.Add($"{at}.backend: volume {backend.Path} is already exported as {volumes[backend.Path!]}; a volume is exported once");
            else if (backend.Kind == BackendKind.File && !files.TryAdd(backend.FullPath(dataDirectory), $"vhost socket {v.Socket}"))
                errors.Add($"{at}.backend: {backend.FullPath(dataDirectory)} already backs {files[backend.FullPath(dataDirectory)]}");
        }
    }

    /// <summary>A listener address in its one spelling ("ADDRESS:PORT" as <see cref="IPEndPoint"/> prints it); refuses one that is not.</summary>
    public static string NormalizeAddress(string address) =>
        TryParseEndPoint(address, out var ep, out string why) ? ep.ToString()
            : throw ManagementException.Invalid($"listener address '{address}' {why}");

    public static bool TryParseEndPoint(string? text, out IPEndPoint endPoint, out string why)
    {
        why = "";
        if (!IPEndPoint.TryParse(text ?? "", out endPoint!) || !(text ?? "").Contains(':'))
        {
            why = "is not ADDRESS:PORT (example: 127.0.0.1:4420)";
            endPoint = null!;
            return false;
        }
        if (endPoint.Port == 0 && !(text ?? "").EndsWith(":0", StringComparison.Ordinal))
        {
            why = "has no port (example: 127.0.0.1:4420)";
            return false;
        }
        return true;
    }
}
