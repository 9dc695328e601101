using System.CommandLine;
using System.Globalization;
using EdgeBlock.Api;

namespace EdgeBlock.Cli;

/// <summary>
/// `edgeblock vhost add|list|remove`: serve a volume (or any backend) to a VM over a vhost-user-blk
/// socket that QEMU's `vhost-user-blk-pci` connects to. Exit codes as the other management commands.
/// </summary>
public static class VhostCommands
{
    public static void AddTo(RootCommand root)
    {
        var socket = root.Options.OfType<Option<string?>>().First(o => o.Name == "--api-socket");
        var group = new Command("vhost", "vhost-user-blk exports: disks served to VMs over shared memory (QEMU vhost-user-blk-pci)");
        group.Subcommands.Add(Add(socket));
        group.Subcommands.Add(List(socket));
        group.Subcommands.Add(Remove(socket));
        root.Subcommands.Add(group);
    }

    private static Command Add(Option<string?> api)
    {
        var socket = new Option<string>("--socket")
        {
            Description = "Unix socket to serve on (QEMU: -chardev socket,id=c0,path=PATH,reconnect=1 -device vhost-user-blk-pci,chardev=c0)",
            Required = true,
        };
        var volume = new Option<string?>("--volume") { Description = "Export a pool's volume: POOL/NAME (same as --backend volume:POOL/NAME)" };
        var backend = new Option<string?>("--backend") { Description = $"What stores the data: {Backends.Syntax} (a relative file PATH is under the data directory)" };
        var queues = new Option<int?>("--queues") { Description = $"Most virtqueues the VM may use, 1..{VhostQueues.Max} (default {VhostQueues.Default}); QEMU's num-queues must not exceed it" };
        var readOnly = new Option<bool>("--read-only") { Description = "The VM sees a read-only disk" };
        var force = new Option<bool>("--force") { Description = "Export a block device even if it carries a file system or partition signature" };
        var command = new Command("add", "Serve a disk to a VM on a vhost-user socket (kept in the config: served again after a restart)")
            { socket, volume, backend, queues, readOnly, force };
        command.Validators.Add(r =>
        {
            if ((r.GetValue(backend) == null) == (r.GetValue(volume) == null)) r.AddError("give either --backend or --volume");
        });
        ApiAction.Set(command, api, async c =>
        {
            string spec = c.Parse.GetValue(volume) is { } v ? $"volume:{v}" : c.Parse.GetValue(backend)!;
            var request = new AddVhostRequest(Path.GetFullPath(c.Parse.GetValue(socket)!), spec, c.Parse.GetValue(queues),
                c.Parse.GetValue(readOnly) ? true : null, c.Parse.GetValue(force));
            var e = ApiClient.Parse<VhostInfo>(await c.Api.SendAsync(HttpMethod.Post, "v1/vhost", request));
            c.Out.WriteLine($"vhost {e.Socket}: {e.Backend}, {Sizes.Format(e.SizeBytes)}, up to {e.Queues} queues{(e.ReadOnly ? ", read-only" : "")}");
            c.Out.WriteLine($"QEMU: -object memory-backend-memfd,id=mem,size=RAM,share=on -machine memory-backend=mem "
                            + $"-chardev socket,id=d0,path={e.Socket},reconnect=1 -device vhost-user-blk-pci,chardev=d0,num-queues=N");
            return 0;
        });
        return command;
    }

    private static Command List(Option<string?> api)
    {
        var json = new Option<bool>("--json") { Description = "Print the API's JSON instead of a table" };
        var command = new Command("list", "List vhost exports: socket, backend, state (waiting, connected, unavailable), requests and bytes served") { json };
        ApiAction.Set(command, api, async c =>
        {
            string body = await c.Api.SendAsync(HttpMethod.Get, "v1/vhost");
            if (c.Parse.GetValue(json)) { c.Out.WriteLine(body); return 0; }
            Table.Write(c.Out, ["SOCKET", "BACKEND", "SIZE", "QUEUES", "STATE", "SESSIONS", "REQUESTS", "FAILED", "READ", "WRITTEN", "LAST DISCONNECT"],
                ApiClient.Parse<List<VhostInfo>>(body).Select(e => new[]
                {
                    e.Socket, e.Backend + (e.ReadOnly ? " (ro)" : ""), Sizes.Format(e.SizeBytes), Num(e.Queues), e.State, Num(e.Connections),
                    Num(e.Requests), Num(e.FailedRequests), Sizes.Format(e.BytesRead), Sizes.Format(e.BytesWritten), e.LastDisconnectReason ?? "",
                }));
            return 0;
        });
        return command;
    }

    private static Command Remove(Option<string?> api)
    {
        var socket = new Argument<string>("SOCKET") { Description = "The export's socket path" };
        var command = new Command("remove", "Stop serving a socket (a connected VM loses the disk; the backend is flushed and kept)") { socket };
        ApiAction.Set(command, api, async c =>
        {
            string path = Path.GetFullPath(c.Parse.GetValue(socket)!);
            await c.Api.SendAsync(HttpMethod.Delete, $"v1/vhost?socket={ApiClient.Escape(path)}");
            c.Out.WriteLine($"vhost {path} removed");
            return 0;
        });
        return command;
    }

    private static string Num(long n) => n.ToString(CultureInfo.InvariantCulture);
}
