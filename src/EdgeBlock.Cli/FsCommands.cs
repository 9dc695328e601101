using System.CommandLine;
using EdgeBlock.Api;

namespace EdgeBlock.Cli;

/// <summary>
/// `edgeblock fs create|list|remove`: file systems of this host on thin volumes — the volume's size is the service's
/// quota, a group caps a set of them. The daemon makes, mounts and unmounts them (it is root for ublk already, and
/// mounts them again at start). Exit codes as the other management commands (2: refused).
/// </summary>
public static class FsCommands
{
    public static void AddTo(RootCommand root)
    {
        var socket = root.Options.OfType<Option<string?>>().First(o => o.Name == "--api-socket");
        var group = new Command("fs", "File systems of this host on thin volumes (a quota per service): create, list, remove");
        group.Subcommands.Add(Create(socket));
        group.Subcommands.Add(List(socket));
        group.Subcommands.Add(Remove(socket));
        root.Subcommands.Add(group);
    }

    private static Command Create(Option<string?> api)
    {
        var volume = new Argument<string>("POOL/NAME") { Description = "The volume to make (new; thin)" };
        var size = new Option<string>("--size") { Description = "The file system's size, its quota (e.g. 2G)", Required = true };
        var mount = new Option<string>("--mount") { Description = "Where to mount it: an empty or missing directory", Required = true };
        var fs = new Option<string?>("--fs") { Description = "ext4 (default) or xfs" };
        var groupName = new Option<string?>("--group") { Description = "The volume's group: its quota caps all file systems in it" };
        var command = new Command("create", "Make a thin volume, attach it to this host, make a file system on it and mount it with discard "
                                            + "(kept in the config: mounted again after a restart)") { volume, size, mount, fs, groupName };
        ApiAction.Set(command, api, async c =>
        {
            var request = new CreateFileSystemRequest(c.Parse.GetValue(volume), c.Parse.GetValue(size), c.Parse.GetValue(mount),
                c.Parse.GetValue(fs), c.Parse.GetValue(groupName));
            var d = ApiClient.Parse<HostDeviceInfo>(await c.Api.SendAsync(HttpMethod.Post, "v1/host/filesystems", request));
            c.Out.WriteLine($"{d.Mount}: {d.FileSystem} on {d.Device ?? "-"} (volume {d.Volume}, {Sizes.Format(d.SizeBytes)}){(d.Reason is { } r ? ": " + r : "")}");
            return 0;
        });
        return command;
    }

    private static Command List(Option<string?> api)
    {
        var json = new Option<bool>("--json") { Description = "Print the API's JSON instead of a table" };
        var command = new Command("list", "List the file systems of this host: mount point, type, device, size") { json };
        ApiAction.Set(command, api, async c =>
        {
            string body = await c.Api.SendAsync(HttpMethod.Get, "v1/host/filesystems");
            if (c.Parse.GetValue(json)) { c.Out.WriteLine(body); return 0; }
            Table.Write(c.Out, ["MOUNT", "FS", "VOLUME", "DEVICE", "SIZE", "STATE", "REASON"],
                ApiClient.Parse<List<HostDeviceInfo>>(body).Select(d => new[]
                {
                    d.Mount ?? "-", d.FileSystem ?? "-", d.Volume, d.Device ?? "-", Sizes.Format(d.SizeBytes), d.State, d.Reason ?? "",
                }));
            return 0;
        });
        return command;
    }

    private static Command Remove(Option<string?> api)
    {
        var volume = new Argument<string>("POOL/NAME") { Description = "The file system's volume" };
        var keep = new Option<bool>("--keep-volume") { Description = "Keep the volume (and its data); only unmount and detach" };
        var command = new Command("remove", "Unmount a file system of this host (refused while busy), detach it and delete its volume") { volume, keep };
        ApiAction.Set(command, api, async c =>
        {
            string v = c.Parse.GetValue(volume)!;
            await c.Api.SendAsync(HttpMethod.Delete, $"v1/host/filesystems?volume={ApiClient.Escape(v)}{(c.Parse.GetValue(keep) ? "&keep_volume=true" : "")}");
            c.Out.WriteLine($"file system of {v} removed{(c.Parse.GetValue(keep) ? " (volume kept)" : "")}");
            return 0;
        });
        return command;
    }
}
