using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace EdgeBlock.Management.Tests;

/// <summary>
/// `edgeblock host attach|devices|detach` through the real daemon and CLI on a machine without ublk (this one: no
/// ublk_drv, modules cannot be loaded): the refusals name the problem and change nothing; a host device in the config
/// stays desired state and shows why it is not attached. Attaching for real is the guest scenario host-attach (6.12).
/// </summary>
public sealed class HostDeviceEndToEndTests
{
    private static void Ok(CliResult r) => Assert.True(r.ExitCode == 0, r.ToString());

    private static async Task<TestDaemon> DaemonWithVolumeAsync()
    {
        var d = await TestDaemon.StartAsync();
        Ok(await d.CliAsync("pool", "create", "p1", $"{Path.Combine(d.Directory, "d0.img")}:64M"));
        Ok(await d.CliAsync("volume", "create", "p1/v1", "--size", "24M"));
        return d;
    }

    private static async Task<JsonElement> DevicesAsync(TestDaemon d)
    {
        var r = await d.CliAsync("host", "devices", "--json");
        Ok(r);
        return JsonDocument.Parse(r.Output).RootElement;
    }

    [Fact]
    public async Task Attach_WithoutUblk_IsRefusedNamingTheModule_AndNothingIsKept()
    {
        if (File.Exists("/dev/ublk-control")) return; // this kernel has ublk: the guest scenario host-attach covers attaching
        await using var d = await DaemonWithVolumeAsync();

        (await d.CliAsync("host", "attach", "p1/v1")).AssertRefused("ublk_drv");

        Assert.Empty((await DevicesAsync(d)).EnumerateArray());
        Assert.DoesNotContain("host_devices\": [{", await File.ReadAllTextAsync(d.ConfigPath));
        Ok(await d.CliAsync("volume", "delete", "p1/v1")); // not left exported by the refused attach
    }

    [Fact]
    public async Task Attach_BadInput_IsRefusedNamingTheProblem()
    {
        await using var d = await DaemonWithVolumeAsync();
        string socket = Path.Combine(d.Directory, "vm.sock");
        Ok(await d.CliAsync("vhost", "add", "--socket", socket, "--volume", "p1/v1"));

        (await d.CliAsync("host", "attach", "p1/v1")).AssertRefused("vhost export", socket);
        (await d.CliAsync("host", "attach", "nosuch/v1")).AssertRefused("nosuch");
        (await d.CliAsync("host", "attach", "p1/nosuch")).AssertRefused("nosuch");
        (await d.CliAsync("host", "attach", "p1")).AssertRefused("POOL/NAME");
        (await d.CliAsync("host", "attach", "p1/v1@s1")).AssertRefused("snapshot");
        (await d.CliAsync("host", "attach", "p1/../etc")).AssertRefused("POOL/NAME");
        (await d.CliAsync("host", "detach", "p1/v1")).AssertRefused("not attached");
        (await d.CliAsync("host", "detach", "/dev/ublkb7")).AssertRefused("not a host device");

        // The API itself: no 500 for a missing or null volume, a bad query, or a body that is not JSON.
        using var http = d.CreateHttpClient();
        var missing = await http.PostAsJsonAsync("http://edgeblock/v1/host/devices", new { volume = (string?)null });
        Assert.Equal(HttpStatusCode.BadRequest, missing.StatusCode);
        Assert.Contains("volume", await missing.Content.ReadAsStringAsync());
        var control = await http.PostAsJsonAsync("http://edgeblock/v1/host/devices", new { volume = "p1/v\u0001" });
        Assert.Equal(HttpStatusCode.BadRequest, control.StatusCode);
        var neither = await http.DeleteAsync("http://edgeblock/v1/host/devices");
        Assert.Equal(HttpStatusCode.BadRequest, neither.StatusCode);
        var both = await http.DeleteAsync("http://edgeblock/v1/host/devices?volume=p1/v1&device=/dev/ublkb0");
        Assert.Equal(HttpStatusCode.BadRequest, both.StatusCode);
        var notJson = await http.PostAsync("http://edgeblock/v1/host/devices", new StringContent("{", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, notJson.StatusCode);
        Assert.Empty((await DevicesAsync(d)).EnumerateArray());
    }

    [Fact]
    public async Task ConfiguredHostDevice_WithoutUblk_IsListedUnavailableNamingTheModule_AndCanBeDetached()
    {
        if (File.Exists("/dev/ublk-control")) return; // this kernel has ublk: the guest scenario host-attach covers attaching
        await using var d = await DaemonWithVolumeAsync();
        await d.StopAsync();
        var config = JsonNode.Parse(await File.ReadAllTextAsync(d.ConfigPath))!.AsObject();
        config["host_devices"] = new JsonArray(new JsonObject { ["volume"] = "p1/v1", ["read_only"] = true });
        await File.WriteAllTextAsync(d.ConfigPath, config.ToJsonString());
        await d.RestartAsync();

        var e = Assert.Single((await DevicesAsync(d)).EnumerateArray());
        Assert.Equal("p1/v1", e.GetProperty("volume").GetString());
        Assert.True(e.GetProperty("read_only").GetBoolean());
        Assert.Equal("unavailable", e.GetProperty("state").GetString());
        Assert.Contains("ublk_drv", e.GetProperty("reason").GetString());

        // Desired state: the volume is taken, as by any export.
        (await d.CliAsync("namespace", "add", "nqn.2026-11.io.edgeblock:default", "--volume", "p1/v1")).AssertRefused("p1/v1");
        Ok(await d.CliAsync("host", "detach", "p1/v1"));
        Assert.Empty((await DevicesAsync(d)).EnumerateArray());
        await d.RestartAsync();
        Assert.Empty((await DevicesAsync(d)).EnumerateArray());
    }

    [Fact]
    public async Task Config_HostDevicesNullOrTwice_IsRefusedNamingTheField()
    {
        await using var d = await DaemonWithVolumeAsync();
        var config = JsonNode.Parse(await File.ReadAllTextAsync(d.ConfigPath))!.AsObject();
        config["host_devices"] = new JsonArray(new JsonObject { ["volume"] = "p1/v1" }, new JsonObject { ["volume"] = "p1/v1" });
        await File.WriteAllTextAsync(d.ConfigPath, config.ToJsonString());
        (await d.CliAsync("config", "reload")).AssertRefused("host_devices[1].volume", "already exported");
        config["host_devices"] = null;
        await File.WriteAllTextAsync(d.ConfigPath, config.ToJsonString());
        (await d.CliAsync("config", "reload")).AssertRefused("host_devices: is null");
        config["host_devices"] = new JsonArray(new JsonObject { ["volume"] = "p1" });
        await File.WriteAllTextAsync(d.ConfigPath, config.ToJsonString());
        (await d.CliAsync("config", "reload")).AssertRefused("host_devices[0].volume");
    }
}
