using System.Collections.Immutable;
using EdgeBlock.Nvme;

namespace EdgeBlock.Target;

/// <summary>
/// An NVM subsystem: an NQN, its namespaces and which hosts may connect.
/// The namespace table is copy-on-write so the I/O path reads it without locks.
/// </summary>
public sealed class Subsystem
{
    private readonly object _gate = new();
    private ImmutableSortedDictionary<uint, Namespace> _namespaces = ImmutableSortedDictionary<uint, Namespace>.Empty;
    private ImmutableHashSet<string> _allowedHosts = ImmutableHashSet<string>.Empty;
    private ImmutableList<Controller> _controllers = ImmutableList<Controller>.Empty;
    private ImmutableDictionary<string, HostAuthentication> _hostAuthentication = ImmutableDictionary<string, HostAuthentication>.Empty.WithComparers(StringComparer.Ordinal);

    public Subsystem(string nqn, bool isDiscovery = false, bool allowAnyHost = true)
    {
        if (!Nqn.IsValid(nqn, out string reason)) throw new ArgumentException($"subsystem NQN '{nqn}' is invalid: {reason}", nameof(nqn));
        NqnName = nqn;
        IsDiscovery = isDiscovery;
        AllowAnyHost = allowAnyHost;
        // A serial number stable for the NQN: hosts use SN to tell subsystems apart.
        SerialNumber = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(nqn)))[..20].ToLowerInvariant();
    }

    public string NqnName { get; }
    public bool IsDiscovery { get; }
    public bool AllowAnyHost { get; set; }
    public string SerialNumber { get; }
    public string ModelNumber { get; init; } = "EdgeBlock";

    /// <summary>Largest NSID this subsystem accepts (Identify Controller NN).</summary>
    public const uint MaxNsid = 1024;

    public ImmutableSortedDictionary<uint, Namespace> Namespaces => Volatile.Read(ref _namespaces);
    public ImmutableHashSet<string> AllowedHosts => Volatile.Read(ref _allowedHosts);
    public ImmutableList<Controller> Controllers => Volatile.Read(ref _controllers);

    /// <summary>Raised after a namespace is added or removed (the target bumps the discovery generation).</summary>
    public event Action<Subsystem>? Changed;

    public Namespace? FindNamespace(uint nsid) => Namespaces.GetValueOrDefault(nsid);

    public bool IsHostAllowed(string hostNqn) => AllowAnyHost || AllowedHosts.Contains(hostNqn);

    public void AllowHost(string hostNqn)
    {
        lock (_gate) _allowedHosts = _allowedHosts.Add(hostNqn);
        Changed?.Invoke(this);
    }

    /// <summary>The secrets a host must authenticate with (DH-HMAC-CHAP), or null when it connects without.</summary>
    public HostAuthentication? FindHostAuthentication(string hostNqn) => Volatile.Read(ref _hostAuthentication).GetValueOrDefault(hostNqn);

    /// <summary>
    /// Sets or (null) clears a host's secrets. Controllers already connected keep whether they require
    /// authentication; a re-authentication (a new AUTH_Negotiate) uses the new secrets.
    /// </summary>
    public void SetHostAuthentication(string hostNqn, HostAuthentication? authentication)
    {
        lock (_gate) _hostAuthentication = authentication == null ? _hostAuthentication.Remove(hostNqn) : _hostAuthentication.SetItem(hostNqn, authentication);
    }

    public void DisallowHost(string hostNqn)
    {
        lock (_gate) _allowedHosts = _allowedHosts.Remove(hostNqn);
        Changed?.Invoke(this);
    }

    /// <summary>Adds a namespace; connected controllers get a Namespace Attribute Changed event.</summary>
    public void AddNamespace(Namespace ns)
    {
        if (ns.Nsid > MaxNsid) throw new ArgumentOutOfRangeException(nameof(ns), $"NSID {ns.Nsid} is above the subsystem's maximum {MaxNsid}");
        lock (_gate)
        {
            if (_namespaces.ContainsKey(ns.Nsid)) throw new InvalidOperationException($"subsystem {NqnName} already has namespace {ns.Nsid}");
            _namespaces = _namespaces.Add(ns.Nsid, ns);
        }
        NotifyNamespaceChanged(ns.Nsid);
    }

    /// <summary>Removes a namespace; returns it (the caller owns the device) or null if absent.</summary>
    public Namespace? RemoveNamespace(uint nsid)
    {
        Namespace? removed;
        lock (_gate)
        {
            if (!_namespaces.TryGetValue(nsid, out removed)) return null;
            _namespaces = _namespaces.Remove(nsid);
        }
        NotifyNamespaceChanged(nsid);
        return removed;
    }

    /// <summary>The next free NSID (1-based).</summary>
    public uint NextFreeNsid()
    {
        var table = Namespaces;
        for (uint nsid = 1; nsid <= MaxNsid; nsid++)
            if (!table.ContainsKey(nsid)) return nsid;
        throw new InvalidOperationException($"subsystem {NqnName} has no free NSID");
    }

    private void NotifyNamespaceChanged(uint nsid)
    {
        foreach (var c in Controllers) c.OnNamespaceChanged(nsid);
        Changed?.Invoke(this);
    }

    internal void Attach(Controller c) { lock (_gate) _controllers = _controllers.Add(c); }
    internal void Detach(Controller c) { lock (_gate) _controllers = _controllers.Remove(c); }
}
