using System.CommandLine;
using System.Globalization;
using EdgeBlock.Api;

namespace EdgeBlock.Cli;

/// <summary>
/// `edgeblock host attach|devices|detach` (beside `host list`): a volume as a block device of this host (ublk), for its own services.
/// Exit codes as the other management commands (2: refused, e.g. detach of a mounted device).
/// </summary>
public static class HostCommands
{
    public static void AddTo(RootCommand root)
    {
        var socket = root.Options.OfType<Option<string?>>().First(o => o.Name == "--api-socket");
        // `host list` (connected NVMe hosts) lives in the same group: "host" is both the NVMe peer and this machine.
        var group = root.Subcommands.First(c => c.Name == "host");
        group.Description = "Connected NVMe hosts (list), and volumes as block devices of this host (attach, devices, detach: /dev/ublkbN via ublk)";
        group.Subcommands.Add(Attach(socket));
        group.Subcommands.Add(Devices(socket));
        group.Subcommands.Add(Detach(socket));
    }

    private static Command Attach(Option<string?> api)
    {
        var volume = new Argument<string>("POOL/NAME") { Description = "The volume to attach" };
        var readOnly = new Option<bool>("--read-only") { Description = "The host sees a read-only disk" };
        var command = new Command("attach", "Attach a volume to this host; prints the device (kept in the config: attached again after a restart)")
            { volume, readOnly };
        ApiAction.Set(command, api, async c =>
        {
            var request = new AttachHostDeviceRequest(c.Parse.GetValue(volume), c.Parse.GetValue(readOnly) ? true : null);
            var d = ApiClient.Parse<HostDeviceInfo>(await c.Api.SendAsync(HttpMethod.Post, "v1/host/devices", request));
            c.Out.WriteLine(d.Device ?? $"volume {d.Volume}: {d.State}: {d.Reason}");
            return 0;
        });
        return command;
    }

    private static Command Devices(Option<string?> api)
    {
        var json = new Option<bool>("--json") { Description = "Print the API's JSON instead of a table" };
        var command = new Command("devices", "List volumes attached to this host: device, state, requests and bytes served") { json };
        ApiAction.Set(command, api, async c =>
        {
            string body = await c.Api.SendAsync(HttpMethod.Get, "v1/host/devices");
            if (c.Parse.GetValue(json)) { c.Out.WriteLine(body); return 0; }
            Table.Write(c.Out, ["VOLUME", "DEVICE", "SIZE", "STATE", "REQUESTS", "FAILED", "READ", "WRITTEN", "REASON"],
                ApiClient.Parse<List<HostDeviceInfo>>(body).Select(d => new[]
                {
                    d.Volume + (d.ReadOnly ? " (ro)" : ""), d.Device ?? "-", Sizes.Format(d.SizeBytes), d.State, Num(d.Requests),
                    Num(d.FailedRequests), Sizes.Format(d.BytesRead), Sizes.Format(d.BytesWritten), d.Reason ?? "",
                }));
            return 0;
        });
        return command;
    }

    private static Command Detach(Option<string?> api)
    {
        var target = new Argument<string>("POOL/NAME|DEVICE") { Description = "The volume or its /dev/ublkbN" };
        var force = new Option<bool>("--force") { Description = "Detach even while mounted (the file system then gets I/O errors; unmount it first instead)" };
        var command = new Command("detach", "Remove a volume's block device from this host (refused while it is mounted)") { target, force };
        ApiAction.Set(command, api, async c =>
        {
            string t = c.Parse.GetValue(target)!;
            string key = t.StartsWith("/dev/", StringComparison.Ordinal) ? "device" : "volume";
            await c.Api.SendAsync(HttpMethod.Delete, $"v1/host/devices?{key}={ApiClient.Escape(t)}{(c.Parse.GetValue(force) ? "&force=true" : "")}");
            c.Out.WriteLine($"{t} detached");
            return 0;
        });
        return command;
    }

    private static string Num(long n) => n.ToString(CultureInfo.InvariantCulture);
}
