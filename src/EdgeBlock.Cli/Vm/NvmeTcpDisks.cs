using System.Net;
using EdgeBlock.Api;

namespace EdgeBlock.Cli.Vm;

/// <summary>
/// NVMe/TCP disks: a subsystem of this VM's own (only a host NQN generated for this run may connect), one
/// namespace per disk in order, reached through one of the daemon's listeners; deleted at the end. The
/// guest's initramfs connects, told by kernel arguments (a stock distro initramfs does not).
/// </summary>
internal sealed class NvmeTcpDisks(ApiClient api, string name, TextWriter output, TextWriter error) : IVmDisks
{
    /// <summary>The host's loopback, as a guest behind QEMU's user-mode network (slirp) sees it.</summary>
    public const string SlirpHost = "10.0.2.2";

    private string? _created;

    public string Nqn => $"nqn.2014-08.io.edgeblock:vm:{name}";

    public async Task<GuestDisks> SetUpAsync(IReadOnlyList<string> volumes, int cpus)
    {
        var listeners = ApiClient.Parse<List<ListenerInfo>>(await api.SendAsync(HttpMethod.Get, "v1/listeners"));
        string target = GuestTarget(listeners.Select(l => l.Address))
            ?? throw new DaemonRefusedException(0, "vm run", "the daemon has no NVMe/TCP listener a guest can reach over QEMU's user network; add one with `edgeblock listener add 127.0.0.1:4420`");
        string hostNqn = $"nqn.2014-08.org.nvmexpress:uuid:{Guid.NewGuid()}";
        await api.SendAsync(HttpMethod.Post, "v1/subsystems", new CreateSubsystemRequest(Nqn, false, [hostNqn]));
        _created = Nqn;
        for (int i = 0; i < volumes.Count; i++)
        {
            await api.SendAsync(HttpMethod.Post, $"v1/subsystems/{ApiClient.Escape(Nqn)}/namespaces", new AddNamespaceRequest("volume:" + volumes[i], (uint)(i + 1)));
            output.WriteLine($"vm {name}: disk {i} = {volumes[i]}: namespace {i + 1} of {Nqn}");
        }
        output.WriteLine($"vm {name}: the guest connects to {target} as {hostNqn}");
        return new GuestDisks([], $"edgeblock.nvme={target} edgeblock.nqn={Nqn} edgeblock.hostnqn={hostNqn}", UserNetwork: true);
    }

    public async Task TearDownAsync()
    {
        if (_created is null) return;
        await Teardown.TryAsync(api, error, $"the subsystem {_created}", $"v1/subsystems/{ApiClient.Escape(_created)}");
        _created = null;
    }

    /// <summary>
    /// ADDR:PORT the guest connects to: a loopback or any-address listener is the host's 10.0.2.2 under
    /// slirp (preferred), another IPv4 listener is reached directly; IPv6-only ones are not reachable.
    /// </summary>
    public static string? GuestTarget(IEnumerable<string> listenerAddresses)
    {
        string? direct = null;
        foreach (string address in listenerAddresses)
        {
            int colon = address.LastIndexOf(':');
            if (colon <= 0) continue;
            string host = address[..colon].Trim('[', ']'), port = address[(colon + 1)..];
            if (!IPAddress.TryParse(host, out var ip)) continue;
            if (IPAddress.IsLoopback(ip) && ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork
                || ip.Equals(IPAddress.Any) || ip.Equals(IPAddress.IPv6Any))
                return $"{SlirpHost}:{port}";
            if (ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork) direct ??= $"{host}:{port}";
        }
        return direct;
    }
}
