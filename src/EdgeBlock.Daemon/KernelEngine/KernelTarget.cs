using System.Net;
using System.Net.Sockets;
using EdgeBlock.Daemon.Management;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Daemon.KernelEngine;

/// <summary>
/// `--engine kernel`: makes the Linux in-kernel NVMe target (nvmet) serve the desired state by
/// creating and removing objects under its configfs root. Listeners become ports (tcp, with
/// every subsystem linked), subsystems and their allowed hosts become subsystems/NQN with
/// allowed_hosts links to hosts/HOSTNQN, namespaces become namespaces/NSID on a block device
/// or file. The engine reconciles: it adds what is missing and removes what it created that
/// is no longer desired; it never touches objects it did not create (<see cref="KernelOwnership"/>).
/// Not thread-safe: the caller serializes (the management service does).
/// </summary>
/// <remarks>
/// Ordering rules of nvmet's configfs (drivers/nvme/target/configfs.c): a namespace's
/// device_path, device_uuid, device_nguid and buffered_io can only be written while it is
/// disabled, so enable comes last; a port's addr_* attributes can only be written while no
/// subsystem is linked (the first link binds the socket), so links come last;
/// attr_allow_any_host=1 is refused while allowed_hosts has links and a host link is refused
/// while it is 1; rmdir of a subsystem or port fails while it has namespaces or links, so
/// those go first; rmdir, never a recursive delete.
/// </remarks>
public sealed class KernelTarget : ITargetEngine
{
    public const string DefaultRoot = "/sys/kernel/config/nvmet";
    public const string HowToEnable = "modprobe nvmet nvmet-tcp; mount -t configfs none /sys/kernel/config";

    private readonly IConfigfs _fs;
    private readonly string _dataDirectory;
    private readonly string _ownershipPath;
    private readonly ILogger _logger;
    private KernelOwnership _owned;
    private DesiredState _applied = new();
    // Namespaces the storage policy refused at start (StoragePolicy.NamespaceKey): kept out of configfs while the state has them.
    private HashSet<string> _refused = [];

    public KernelTarget(string root, string dataDirectory, ILogger logger, IConfigfs? fs = null)
    {
        Root = Path.GetFullPath(root);
        _dataDirectory = dataDirectory;
        _ownershipPath = Path.Combine(dataDirectory, KernelOwnership.FileName);
        _logger = logger;
        _fs = fs ?? new Configfs();
        _owned = new KernelOwnership { Root = Root };
    }

    /// <summary>The nvmet configfs directory (default /sys/kernel/config/nvmet).</summary>
    public string Root { get; }

    /// <summary>A copy of what was last applied successfully.</summary>
    public DesiredState Applied => _applied.Clone();

    /// <summary>What the engine owns now (as recorded in the data directory).</summary>
    public KernelOwnership Ownership => _owned;

    private string Subsystems => Path.Combine(Root, "subsystems");
    private string Ports => Path.Combine(Root, "ports");
    private string Hosts => Path.Combine(Root, "hosts");
    private string SubsystemDir(string nqn) => Path.Combine(Subsystems, nqn);
    private string NamespaceDir(string nqn, uint nsid) => Path.Combine(Subsystems, nqn, "namespaces", nsid.ToString(System.Globalization.CultureInfo.InvariantCulture));
    private string PortDir(int id) => Path.Combine(Ports, id.ToString(System.Globalization.CultureInfo.InvariantCulture));
    private string HostDir(string nqn) => Path.Combine(Hosts, nqn);

    /// <summary>Refuses (naming the fix) when configfs is not mounted or nvmet is not loaded.</summary>
    public void CheckAvailable()
    {
        if (_fs.DirectoryExists(Subsystems) && _fs.DirectoryExists(Ports) && _fs.DirectoryExists(Hosts)) return;
        throw ManagementException.Invalid(
            $"the Linux kernel target is not available: {Root} has no subsystems/, ports/ and hosts/ " +
            $"(is configfs mounted and nvmet loaded? as root: {HowToEnable}; or run without --engine kernel)");
    }

    /// <summary>Why a desired state cannot go to the kernel target (empty: it can), checked before anything is changed.</summary>
    public List<string> Refusals(DesiredState desired)
    {
        var errors = new List<string>();
        foreach (var s in desired.Subsystems)
        {
            if (s.HostAuth.Count > 0)
                errors.Add($"subsystem {s.Nqn}: DH-HMAC-CHAP host secrets (host_auth) are served by EdgeBlock's own engine; this daemon runs --engine kernel");
            foreach (var ns in s.Namespaces)
            {
                if (!BackendSpec.TryParse(ns.Backend, out var backend, out string error))
                    errors.Add($"namespace {ns.Nsid} of {s.Nqn}: {error}");
                else if (backend.Kind != BackendKind.File)
                    errors.Add($"namespace {ns.Nsid} of {s.Nqn}: backend {backend} cannot go to the kernel target: nvmet serves only block devices and files " +
                               $"({backend.Kind.ToString().ToLowerInvariant()} backends exist in EdgeBlock's own data path); use file:PATH (e.g. file:/dev/nullb0 or file:disk.img:8G), or serve without --engine kernel");
            }
            if (_fs.DirectoryExists(SubsystemDir(s.Nqn)) && !_owned.Subsystems.Contains(s.Nqn))
                errors.Add($"subsystem {s.Nqn}: {SubsystemDir(s.Nqn)} exists and was not created by EdgeBlock; remove it (e.g. nvmetcli) or choose another NQN");
        }
        foreach (var l in desired.Listeners)
        {
            string address = ConfigValidator.NormalizeAddress(l.Address);
            if (_owned.FindPort(address) is { } owned && _fs.DirectoryExists(PortDir(owned.Id))) continue;
            var (_, traddr, trsvcid) = Address(address);
            foreach (string id in _fs.List(Ports))
            {
                string dir = Path.Combine(Ports, id);
                if (_fs.Read(Path.Combine(dir, "addr_traddr")) == traddr && _fs.Read(Path.Combine(dir, "addr_trsvcid")) == trsvcid &&
                    _owned.Ports.All(p => p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture) != id))
                    errors.Add($"listener {address}: port {dir} already serves {traddr}:{trsvcid} and was not created by EdgeBlock; remove it or choose another address");
            }
        }
        return errors;
    }

    /// <summary>
    /// Makes configfs match <paramref name="desired"/> (see the class remarks for the order).
    /// Throws <see cref="ManagementException"/> naming the refusal, the configfs path and the
    /// kernel's errno text; what was done before the failure stays, and is recorded as owned.
    /// </summary>
    public void Apply(DesiredState desired)
    {
        CheckAvailable();
        desired = WithoutRefused(desired);
        _owned = KernelOwnership.Load(_ownershipPath, Root);
        var refusals = Refusals(desired);
        if (refusals.Count > 0) throw ManagementException.Invalid(string.Join("; ", refusals));
        try
        {
            RemoveUndesired(desired);
            AddMissing(desired);
        }
        catch (ConfigfsException ex)
        {
            throw Refused(ex);
        }
        finally
        {
            Forget();
            SaveOwnership();
        }
        _applied = desired.Clone();
    }

    private ManagementException Refused(ConfigfsException ex)
    {
        string hint = ex.Errno switch
        {
            98 => " (EADDRINUSE: another program, or another port of the kernel target, listens there)",
            22 when ex.PathName.Contains("/ports/", StringComparison.Ordinal) && ex.Operation.StartsWith("symlink", StringComparison.Ordinal)
                => " (is nvmet-tcp loaded? modprobe nvmet-tcp; the kernel log says more: dmesg | grep nvmet)",
            _ => " (the kernel log may say more: dmesg | grep nvmet)",
        };
        _logger.LogError("kernel target: {Message}", ex.Message);
        return new ManagementException(409, "refused by the kernel target", $"kernel target: {ex.Message}{hint}");
    }

    // ---- the reconcile steps ------------------------------------------------------------------

    private void RemoveUndesired(DesiredState desired)
    {
        var wantedAddresses = desired.Listeners.Select(l => ConfigValidator.NormalizeAddress(l.Address)).ToHashSet(StringComparer.Ordinal);
        var wantedSubsystems = desired.Subsystems.ToDictionary(s => s.Nqn, StringComparer.Ordinal);
        var ownedPortIds = _owned.Ports.ToDictionary(p => p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparer.Ordinal);

        // 1. Port links to our subsystems that must go: the subsystem is no longer desired, or the port (ours) is not.
        foreach (string id in _fs.List(Ports))
        {
            bool portGoes = ownedPortIds.TryGetValue(id, out var port) && !wantedAddresses.Contains(port.Address);
            string links = Path.Combine(Ports, id, "subsystems");
            foreach (string nqn in _fs.List(links))
            {
                if (!_owned.Subsystems.Contains(nqn)) continue;
                if (portGoes || !wantedSubsystems.ContainsKey(nqn)) Unlink(Path.Combine(links, nqn));
            }
        }

        // 2. Our subsystems: gone entirely, or trimmed to the desired namespaces and hosts.
        foreach (string nqn in _owned.Subsystems.ToList())
        {
            string dir = SubsystemDir(nqn);
            if (!_fs.DirectoryExists(dir)) continue;
            if (!wantedSubsystems.TryGetValue(nqn, out var spec))
            {
                foreach (string nsid in _fs.List(Path.Combine(dir, "namespaces"))) RemoveNamespaceDir(Path.Combine(dir, "namespaces", nsid));
                foreach (string host in _fs.List(Path.Combine(dir, "allowed_hosts"))) Unlink(Path.Combine(dir, "allowed_hosts", host));
                Rmdir(dir);
                _owned.Subsystems.Remove(nqn);
                _logger.LogInformation("kernel target: subsystem {Nqn} removed", nqn);
                continue;
            }
            foreach (string name in _fs.List(Path.Combine(dir, "namespaces")))
            {
                string nsDir = Path.Combine(dir, "namespaces", name);
                var want = spec.Namespaces.FirstOrDefault(n => n.Nsid.ToString(System.Globalization.CultureInfo.InvariantCulture) == name);
                if (want == null || !NamespaceMatches(nsDir, want))
                {
                    RemoveNamespaceDir(nsDir);
                    _logger.LogInformation("kernel target: subsystem {Nqn}: namespace {Nsid} removed", nqn, name);
                }
            }
            var hosts = spec.AllowAnyHost ? [] : spec.Hosts.ToHashSet(StringComparer.Ordinal);
            foreach (string host in _fs.List(Path.Combine(dir, "allowed_hosts")))
                if (!hosts.Contains(host)) Unlink(Path.Combine(dir, "allowed_hosts", host));
            // allow_any_host=1 only once allowed_hosts is empty (nvmet refuses it otherwise).
            if (spec.AllowAnyHost) WriteIfDifferent(Path.Combine(dir, "attr_allow_any_host"), "1");
        }

        // 3. Our ports that are no longer desired (their links to our subsystems are gone).
        foreach (var port in _owned.Ports.ToList())
        {
            if (wantedAddresses.Contains(port.Address)) continue;
            string dir = PortDir(port.Id);
            if (_fs.DirectoryExists(dir))
            {
                Rmdir(dir);
                _logger.LogInformation("kernel target: port {Id} ({Address}) removed", port.Id, port.Address);
            }
            _owned.Ports.Remove(port);
        }

        // 4. Our hosts that no subsystem links to any more and none will.
        var neededHosts = NeededHosts(desired);
        foreach (string host in _owned.Hosts.ToList())
        {
            if (neededHosts.Contains(host)) continue;
            if (!_fs.DirectoryExists(HostDir(host))) { _owned.Hosts.Remove(host); continue; }
            if (_fs.List(Subsystems).Any(s => _fs.LinkExists(Path.Combine(Subsystems, s, "allowed_hosts", host)))) continue; // another tool's subsystem uses it
            Rmdir(HostDir(host));
            _owned.Hosts.Remove(host);
        }
    }

    private void AddMissing(DesiredState desired)
    {
        // 1. Hosts first: subsystems link to them.
        foreach (string host in NeededHosts(desired))
        {
            if (_fs.DirectoryExists(HostDir(host))) continue;
            Mkdir(HostDir(host));
            _owned.Hosts.Add(host);
            SaveOwnership();
        }

        // 2. Subsystems, their hosts and namespaces.
        foreach (var spec in desired.Subsystems)
        {
            string dir = SubsystemDir(spec.Nqn);
            if (!_fs.DirectoryExists(dir))
            {
                Mkdir(dir);
                _owned.Subsystems.Add(spec.Nqn);
                SaveOwnership();
                _logger.LogInformation("kernel target: subsystem {Nqn} created", spec.Nqn);
            }
            if (!spec.AllowAnyHost)
            {
                // allow_any_host=0 before the first host link (nvmet refuses links while it is 1).
                WriteIfDifferent(Path.Combine(dir, "attr_allow_any_host"), "0");
                foreach (string host in spec.Hosts)
                {
                    string link = Path.Combine(dir, "allowed_hosts", host);
                    if (!_fs.LinkExists(link)) Symlink(HostDir(host), link);
                }
            }
            else
            {
                WriteIfDifferent(Path.Combine(dir, "attr_allow_any_host"), "1");
            }
            foreach (var ns in spec.Namespaces) AddNamespaceDir(spec.Nqn, ns);
        }

        // 3. Ports last: address first, then the links (the first one binds the socket).
        foreach (var l in desired.Listeners)
        {
            string address = ConfigValidator.NormalizeAddress(l.Address);
            var port = _owned.FindPort(address);
            if (port == null || !_fs.DirectoryExists(PortDir(port.Id)))
            {
                if (port != null) _owned.Ports.Remove(port);
                port = new OwnedPort { Address = address, Id = FreePortId() };
                Mkdir(PortDir(port.Id));
                _owned.Ports.Add(port);
                SaveOwnership();
                _logger.LogInformation("kernel target: port {Id} = tcp {Address}", port.Id, address);
            }
            string links = Path.Combine(PortDir(port.Id), "subsystems");
            if (_fs.List(links).Count == 0)
            {
                // Written only while nothing is linked (nvmet refuses addr_* on an enabled port);
                // also completes a port an earlier failure left half-written.
                var (family, traddr, trsvcid) = Address(address);
                WriteIfDifferent(Path.Combine(PortDir(port.Id), "addr_trtype"), "tcp");
                WriteIfDifferent(Path.Combine(PortDir(port.Id), "addr_adrfam"), family);
                WriteIfDifferent(Path.Combine(PortDir(port.Id), "addr_traddr"), traddr);
                WriteIfDifferent(Path.Combine(PortDir(port.Id), "addr_trsvcid"), trsvcid);
            }
            foreach (var spec in desired.Subsystems)
            {
                string link = Path.Combine(links, spec.Nqn);
                if (!_fs.LinkExists(link)) Symlink(SubsystemDir(spec.Nqn), link);
            }
        }
    }

    /// <summary>namespaces/NSID: device_path, device_uuid, device_nguid (and buffered_io when the file needs it) while disabled, then enable.</summary>
    private void AddNamespaceDir(string nqn, NamespaceSpec ns)
    {
        string dir = NamespaceDir(nqn, ns.Nsid);
        if (_fs.DirectoryExists(dir))
        {
            if (_fs.Read(Path.Combine(dir, "enable")) != "1") Write(Path.Combine(dir, "enable"), "1"); // left disabled by an earlier failure
            return;
        }
        string path = DevicePath(ns);
        Mkdir(dir);
        try
        {
            Write(Path.Combine(dir, "device_path"), path);
            if (ns.Uuid is { } uuid)
            {
                Write(Path.Combine(dir, "device_uuid"), uuid.ToString("D"));
                // NGUID = the UUID's 16 bytes in order, as EdgeBlock's own target reports it.
                Write(Path.Combine(dir, "device_nguid"), uuid.ToString("D"));
            }
            if (File.Exists(path) && !Configfs.SupportsDirectIo(path)) // block devices always take O_DIRECT
            {
                Write(Path.Combine(dir, "buffered_io"), "1");
                _logger.LogInformation("kernel target: {Path} does not support O_DIRECT (tmpfs?): buffered_io=1", path);
            }
            Write(Path.Combine(dir, "enable"), "1");
        }
        catch (ConfigfsException)
        {
            try { _fs.RemoveDirectory(dir); } catch (ConfigfsException) { /* the first error is the one to report */ }
            throw;
        }
        _logger.LogInformation("kernel target: subsystem {Nqn}: namespace {Nsid} = {Path}", nqn, ns.Nsid, path);
    }

    private void RemoveNamespaceDir(string dir)
    {
        if (_fs.Read(Path.Combine(dir, "enable")) == "1") Write(Path.Combine(dir, "enable"), "0");
        Rmdir(dir);
    }

    private bool NamespaceMatches(string dir, NamespaceSpec want)
    {
        if (_fs.Read(Path.Combine(dir, "device_path")) != DevicePath(want)) return false;
        return want.Uuid is not { } uuid || string.Equals(_fs.Read(Path.Combine(dir, "device_uuid")), uuid.ToString("D"), StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>The absolute path nvmet opens; a missing file with a size is created sparse (as EdgeBlock's own file backend does).</summary>
    private string DevicePath(NamespaceSpec ns)
    {
        BackendSpec.TryParse(ns.Backend, out var backend, out _);
        string full = backend.FullPath(_dataDirectory);
        if (!File.Exists(full) && backend.SizeBytes is { } size && Directory.Exists(Path.GetDirectoryName(full)))
        {
            try
            {
                using var f = new FileStream(full, FileMode.CreateNew, FileAccess.Write);
                f.SetLength(size);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw ManagementException.Invalid($"namespace {ns.Nsid}: backend {backend}: cannot create {full}: {ex.Message}");
            }
        }
        return full;
    }

    private static HashSet<string> NeededHosts(DesiredState desired) =>
        desired.Subsystems.Where(s => !s.AllowAnyHost).SelectMany(s => s.Hosts).ToHashSet(StringComparer.Ordinal);

    private int FreePortId()
    {
        var used = _fs.List(Ports).Select(n => int.TryParse(n, out int v) ? v : -1).Concat(_owned.Ports.Select(p => p.Id)).ToHashSet();
        int id = 1;
        while (used.Contains(id)) id++;
        return id;
    }

    /// <summary>addr_adrfam, addr_traddr, addr_trsvcid of a normalized "ADDRESS:PORT".</summary>
    private static (string Family, string Traddr, string Trsvcid) Address(string address)
    {
        var ep = IPEndPoint.Parse(address);
        string family = ep.AddressFamily == AddressFamily.InterNetworkV6 ? "ipv6" : "ipv4";
        return (family, ep.Address.ToString(), ep.Port.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>Drops ownership records of objects that no longer exist (removed by hand, or a reboot emptied configfs).</summary>
    private void Forget()
    {
        _owned.Subsystems.RemoveAll(s => !_fs.DirectoryExists(SubsystemDir(s)));
        _owned.Ports.RemoveAll(p => !_fs.DirectoryExists(PortDir(p.Id)));
        _owned.Hosts.RemoveAll(h => !_fs.DirectoryExists(HostDir(h)));
    }

    private void SaveOwnership()
    {
        try
        {
            _owned.Save(_ownershipPath);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ManagementException(500, "cannot save the kernel engine's record",
                $"writing {_ownershipPath} failed: {ex.Message}; it lists what EdgeBlock created in {Root}");
        }
    }

    private void WriteIfDifferent(string path, string value)
    {
        if (_fs.Read(path) != value) Write(path, value);
    }

    private void Mkdir(string path) => _fs.MakeDirectory(path);
    private void Rmdir(string path) => _fs.RemoveDirectory(path);
    private void Write(string path, string value) => _fs.Write(path, value);
    private void Symlink(string target, string link) => _fs.Link(target, link);
    private void Unlink(string link) => _fs.Unlink(link);

    // ---- the engine interface: every diff is applied as a whole-state reconcile -------------------

    /// <summary>The state without the namespaces refused at start; a refused one that left the state is forgotten.</summary>
    private DesiredState WithoutRefused(DesiredState desired)
    {
        if (_refused.Count == 0) return desired;
        var keys = desired.Subsystems.SelectMany(s => s.Namespaces.Select(n => StoragePolicy.NamespaceKey(s.Nqn, n.Nsid, n.Backend))).ToHashSet();
        _refused.IntersectWith(keys);
        var served = desired.Clone();
        foreach (var s in served.Subsystems) s.Namespaces.RemoveAll(n => _refused.Contains(StoragePolicy.NamespaceKey(s.Nqn, n.Nsid, n.Backend)));
        return served;
    }

    /// <summary>Applies the whole state; vhost exports are logged as not served (vhost-user needs EdgeBlock's own engine), as are the refused namespaces.</summary>
    public Task StartAsync(DesiredState state, IReadOnlyDictionary<string, string>? refused = null)
    {
        _refused = refused?.Keys.Where(k => k.StartsWith("ns ", StringComparison.Ordinal)).ToHashSet() ?? [];
        foreach (var (key, why) in refused ?? new Dictionary<string, string>())
            if (_refused.Contains(key)) _logger.LogError("namespace not served: {Reason}", why);
        Apply(state);
        foreach (var v in state.Vhost)
            _logger.LogError("vhost export {Socket} not served: vhost-user needs EdgeBlock's own engine (this daemon runs --engine kernel)", v.Socket);
        foreach (var h in state.HostDevices)
            _logger.LogError("host device {Volume} not attached: ublk devices need EdgeBlock's own engine (this daemon runs --engine kernel)", h.Volume);
        return Task.CompletedTask;
    }

    /// <summary>
    /// Reconciles configfs to the diff's target state; on a refusal re-applies the state before it (best effort)
    /// and throws. A vhost export is refused before anything changes; removing one (never served here) changes nothing.
    /// </summary>
    public Task ApplyAsync(StateDiff diff)
    {
        if (diff.Changes.Any(c => c is VhostAdded))
            throw new EngineChangeException(ManagementException.Invalid("vhost-user exports are served by EdgeBlock's own engine; this daemon runs --engine kernel"), []);
        if (diff.Changes.Any(c => c is HostDeviceAdded))
            throw new EngineChangeException(ManagementException.Invalid("host devices (ublk) are served by EdgeBlock's own engine; this daemon runs --engine kernel"), []);
        if (diff.Changes.All(c => c is VhostRemoved or HostDeviceRemoved)) return Task.CompletedTask;
        try
        {
            Apply(diff.To);
        }
        catch (ManagementException ex)
        {
            var failures = new List<string>();
            try
            {
                Apply(diff.From);
            }
            catch (ManagementException undo)
            {
                _logger.LogError("kernel target: undoing a refused change failed too: {Message}", undo.Message);
                failures.Add(undo.Message);
            }
            throw new EngineChangeException(ex, failures);
        }
        return Task.CompletedTask;
    }

    /// <summary>Nothing: the kernel target keeps serving when the daemon stops.</summary>
    public Task ClearAsync() => Task.CompletedTask;

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    /// <summary>None in this process: nvmet's ports listen in the kernel.</summary>
    public int ListenerCount => 0;

    public ListenerState? Listener(string address) => null;

    public HostDeviceInfo DescribeHostDevice(HostDeviceSpec spec) =>
        new(spec.Volume, spec.ReadOnly, null, "unavailable", "host devices need EdgeBlock's own engine (this daemon runs --engine kernel)", 0);

    public VhostInfo DescribeVhost(VhostSpec spec) =>
        new(VhostSocket.Resolve(spec.Socket, _dataDirectory), spec.Backend, spec.QueueCount, spec.ReadOnly, 0, 0, "unavailable", 0,
            "not served under --engine kernel", 0, 0, 0, 0);
}
