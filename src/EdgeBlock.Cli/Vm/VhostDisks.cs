using EdgeBlock.Api;

namespace EdgeBlock.Cli.Vm;

/// <summary>
/// vhost-user disks: a volume already exported over vhost-user is used as it is (and left alone);
/// otherwise this run creates an export on <c>DATA-DIR/vhost/vm-NAME-i.sock</c> and removes it at the end.
/// </summary>
internal sealed class VhostDisks(ApiClient api, string name, string dataDir, TextWriter output, TextWriter error) : IVmDisks
{
    private readonly List<string> _created = [];

    public async Task<GuestDisks> SetUpAsync(IReadOnlyList<string> volumes, int cpus)
    {
        var existing = ApiClient.Parse<List<VhostInfo>>(await api.SendAsync(HttpMethod.Get, "v1/vhost"));
        var disks = new List<VhostDisk>();
        for (int i = 0; i < volumes.Count; i++)
        {
            string backend = "volume:" + volumes[i];
            var export = existing.FirstOrDefault(e => e.Backend == backend);
            if (export is not null)
            {
                output.WriteLine($"vm {name}: disk {i} = {volumes[i]}: existing export {export.Socket} (left in place)");
            }
            else
            {
                string socket = VmPaths.VhostSocket(dataDir, name, i);
                export = ApiClient.Parse<VhostInfo>(await api.SendAsync(HttpMethod.Post, "v1/vhost", new AddVhostRequest(socket, backend)));
                _created.Add(export.Socket);
                output.WriteLine($"vm {name}: disk {i} = {volumes[i]}: exported on {export.Socket} ({export.Queues} queues)");
            }
            disks.Add(new VhostDisk(export.Socket, export.Queues));
        }
        return new GuestDisks(disks);
    }

    public async Task TearDownAsync()
    {
        foreach (string socket in _created)
            await Teardown.TryAsync(api, error, $"the vhost-user export {socket}", $"v1/vhost?socket={ApiClient.Escape(socket)}");
        _created.Clear();
    }
}
