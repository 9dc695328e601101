using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using EdgeBlock.Daemon;

namespace EdgeBlock.Management.Tests;

/// <summary>The `edgeblock` CLI against a running daemon: changes, listings, refusals, restart.</summary>
public sealed class CliEndToEndTests
{
    private const string Vm1 = "nqn.2026-11.io.edgeblock:vm1";
    private const string HostA = "nqn.2014-08.org.nvmexpress:uuid:6b1c5f0e-0000-4000-8000-00000000000a";

    private static void Ok(CliResult r) => Assert.True(r.ExitCode == 0, r.ToString());

    private static void Refused(CliResult r, params string[] detailMentions)
    {
        Assert.True(r.ExitCode == 2, r.ToString());
        Assert.Contains("refused", r.Error);
        foreach (string m in detailMentions) Assert.Contains(m, r.Error);
    }

    private static JsonElement Json(CliResult r)
    {
        Ok(r);
        return JsonDocument.Parse(r.Output).RootElement;
    }

    [Fact]
    public async Task FirstStart_WritesTheDefaultConfig_AndStatusShowsIt()
    {
        await using var d = await TestDaemon.StartAsync();
        Assert.True(File.Exists(d.ConfigPath));
        var status = Json(await d.CliAsync("status", "--json"));
        Assert.Equal(1, status.GetProperty("subsystems").GetInt32());
        Assert.Equal(1, status.GetProperty("namespaces").GetInt32());
        Assert.Equal(1, status.GetProperty("listeners").GetInt32());
        var human = await d.CliAsync("status");
        Ok(human);
        Assert.Contains(d.ConfigPath, human.Output);
        var subsystems = Json(await d.CliAsync("subsystem", "list", "--json"));
        var only = Assert.Single(subsystems.EnumerateArray());
        Assert.Equal(DaemonOptions.DefaultSubsystemNqn, only.GetProperty("nqn").GetString());
        Assert.True(only.GetProperty("allow_any_host").GetBoolean());
    }

    [Fact]
    public async Task CreateSubsystem_AddHost_AddNamespace_List()
    {
        await using var d = await TestDaemon.StartAsync();
        Ok(await d.CliAsync("subsystem", "create", Vm1));
        Ok(await d.CliAsync("subsystem", "add-host", Vm1, HostA));
        var add = await d.CliAsync("namespace", "add", Vm1, "--backend", "memory:32M");
        Ok(add);
        Assert.Contains("namespace 1", add.Output);

        var s = Json(await d.CliAsync("subsystem", "show", Vm1, "--json"));
        Assert.False(s.GetProperty("allow_any_host").GetBoolean());
        Assert.Equal(HostA, Assert.Single(s.GetProperty("hosts").EnumerateArray()).GetString());
        var ns = Assert.Single(s.GetProperty("namespaces").EnumerateArray());
        Assert.Equal(1u, ns.GetProperty("nsid").GetUInt32());
        Assert.Equal(32L << 20, ns.GetProperty("size_bytes").GetInt64());

        var live = d.Daemon.Target.FindSubsystem(Vm1)!;
        Assert.True(live.IsHostAllowed(HostA));
        Assert.False(live.IsHostAllowed("nqn.2014-08.org.nvmexpress:uuid:someone-else"));
        Assert.Equal(32L << 20, live.FindNamespace(1)!.BlockCount * 512);

        var table = await d.CliAsync("subsystem", "list");
        Ok(table);
        Assert.Contains(Vm1, table.Output);
        Assert.Contains("NAMESPACES", table.Output);
        var nsTable = await d.CliAsync("namespace", "list", Vm1);
        Ok(nsTable);
        Assert.Contains("memory:32M", nsTable.Output);
        Assert.Contains(Vm1, await File.ReadAllTextAsync(d.ConfigPath));

        Ok(await d.CliAsync("namespace", "remove", Vm1, "1"));
        Assert.Null(live.FindNamespace(1));
        Ok(await d.CliAsync("subsystem", "remove-host", Vm1, HostA));
        Ok(await d.CliAsync("subsystem", "delete", Vm1));
        Assert.Null(d.Daemon.Target.FindSubsystem(Vm1));
        Assert.DoesNotContain(Vm1, await File.ReadAllTextAsync(d.ConfigPath));
    }

    [Fact]
    public async Task Listeners_AddedByTheCli_AcceptConnections_AndStopWhenRemoved()
    {
        await using var d = await TestDaemon.StartAsync();
        int port = FreePort();
        Ok(await d.CliAsync("listener", "add", $"127.0.0.1:{port}"));
        using (var client = new TcpClient())
            await client.ConnectAsync(IPAddress.Loopback, port);
        var list = Json(await d.CliAsync("listener", "list", "--json"));
        Assert.Equal(2, list.GetArrayLength());
        Ok(await d.CliAsync("listener", "remove", $"127.0.0.1:{port}"));
        using (var client = new TcpClient())
            await Assert.ThrowsAnyAsync<SocketException>(() => client.ConnectAsync(IPAddress.Loopback, port));
        Assert.Equal(1, Json(await d.CliAsync("listener", "list", "--json")).GetArrayLength());
    }

    [Fact]
    public async Task Refusals_NameTheProblem_AndChangeNothing()
    {
        await using var d = await TestDaemon.StartAsync();
        Ok(await d.CliAsync("subsystem", "create", Vm1, "--allow-any-host"));
        string configBefore = await File.ReadAllTextAsync(d.ConfigPath);
        string listBefore = (await d.CliAsync("subsystem", "list", "--json")).Output;

        Refused(await d.CliAsync("subsystem", "create", Vm1), Vm1, "already exists");
        Refused(await d.CliAsync("subsystem", "create", "nqn.bad"), "nqn.bad", "not a valid NQN");
        Refused(await d.CliAsync("subsystem", "create", "nqn.2026-11.io.edgeblock:" + new string('x', 300)), "not a valid NQN");
        string missing = Path.Combine(d.Directory, "no-such-dir", "disk.img");
        Refused(await d.CliAsync("namespace", "add", Vm1, "--backend", $"file:{missing}:1G"), Path.Combine(d.Directory, "no-such-dir"), "does not exist");
        Refused(await d.CliAsync("namespace", "add", Vm1, "--backend", $"file:{Path.Combine(d.Directory, "absent.img")}"), "does not exist", "give a size");
        Refused(await d.CliAsync("namespace", "add", Vm1, "--backend", "tape:1G"), "tape:1G", "not a backend");
        Refused(await d.CliAsync("namespace", "add", Vm1, "--backend", "memory:12Q"), "not a size");
        Refused(await d.CliAsync("namespace", "add", "nqn.2026-11.io.edgeblock:nosuch", "--backend", "memory:16M"), "no subsystem");
        Refused(await d.CliAsync("subsystem", "add-host", Vm1, "not-an-nqn"), "not-an-nqn", "not a valid host NQN");
        Refused(await d.CliAsync("namespace", "remove", Vm1, "7"), "no namespace 7");
        using var squatter = new TcpListener(IPAddress.Loopback, 0);
        squatter.Start();
        int port = ((IPEndPoint)squatter.LocalEndpoint).Port;
        Refused(await d.CliAsync("listener", "add", $"127.0.0.1:{port}"), $"127.0.0.1:{port}", "in use");
        Refused(await d.CliAsync("listener", "add", "localhost"), "localhost", "ADDRESS:PORT");

        Assert.Equal(configBefore, await File.ReadAllTextAsync(d.ConfigPath));
        Assert.Equal(listBefore, (await d.CliAsync("subsystem", "list", "--json")).Output);
        Assert.Equal(1, Json(await d.CliAsync("listener", "list", "--json")).GetArrayLength());
        Assert.Empty(d.Daemon.Target.FindSubsystem(Vm1)!.Namespaces);
        Assert.False(File.Exists(Path.Combine(d.Directory, "absent.img")));
    }

    [Fact]
    public async Task NamespaceAdd_ExplicitNsidTaken_IsRefused()
    {
        await using var d = await TestDaemon.StartAsync();
        Refused(await d.CliAsync("namespace", "add", DaemonOptions.DefaultSubsystemNqn, "--nsid", "1", "--backend", "null"), "already has namespace 1");
        Ok(await d.CliAsync("namespace", "add", DaemonOptions.DefaultSubsystemNqn, "--nsid", "5", "--backend", "null:1G"));
        Assert.NotNull(d.Daemon.Target.FindSubsystem(DaemonOptions.DefaultSubsystemNqn)!.FindNamespace(5));
    }

    [Fact]
    public async Task Restart_ConfigIsBack_WithTheSameNamespaceUuids()
    {
        await using var d = await TestDaemon.StartAsync();
        Ok(await d.CliAsync("subsystem", "create", Vm1));
        Ok(await d.CliAsync("subsystem", "add-host", Vm1, HostA));
        Ok(await d.CliAsync("namespace", "add", Vm1, "--nsid", "3", "--backend", "file:vm1.img:16M"));
        var before = Json(await d.CliAsync("subsystem", "list", "--json")).GetRawText();
        Guid uuid = d.Daemon.Target.FindSubsystem(Vm1)!.FindNamespace(3)!.Uuid;

        await d.RestartAsync();

        Assert.Equal(before, Json(await d.CliAsync("subsystem", "list", "--json")).GetRawText());
        var live = d.Daemon.Target.FindSubsystem(Vm1)!;
        Assert.Equal(uuid, live.FindNamespace(3)!.Uuid);
        Assert.True(live.IsHostAllowed(HostA));
        Assert.False(live.AllowAnyHost);
        Assert.True(File.Exists(Path.Combine(d.Directory, "vm1.img")));
    }

    [Fact]
    public async Task InvalidConfig_IsRefusedAtStart_NamingTheField()
    {
        await using var d = await TestDaemon.StartAsync();
        await d.StopAsync();
        string text = (await File.ReadAllTextAsync(d.ConfigPath)).Replace(DaemonOptions.DefaultSubsystemNqn, "nqn.oops");
        await File.WriteAllTextAsync(d.ConfigPath, text);
        var ex = await Assert.ThrowsAnyAsync<InvalidOperationException>(() => d.RestartAsync());
        Assert.Contains("subsystems[0].nqn", ex.Message);
        Assert.Contains("nqn.oops", ex.Message);
        Assert.Equal(text, await File.ReadAllTextAsync(d.ConfigPath));

        await File.WriteAllTextAsync(d.ConfigPath, text.Replace("\"hosts\"", "\"hostz\""));
        ex = await Assert.ThrowsAnyAsync<InvalidOperationException>(() => d.RestartAsync());
        Assert.Contains("hostz", ex.Message);
    }

    [Fact]
    public async Task Api_UnknownFieldOrMalformedBody_IsAProblemNamingIt()
    {
        await using var d = await TestDaemon.StartAsync();
        using var api = new EdgeBlock.Cli.ApiClient(d.Socket);
        var typo = await Assert.ThrowsAsync<EdgeBlock.Cli.DaemonRefusedException>(() => api.SendAsync(HttpMethod.Post, "v1/listeners", new { adress = "127.0.0.1:1" }));
        Assert.Equal(400, typo.Status);
        Assert.Contains("adress", typo.Detail);
        var missing = await Assert.ThrowsAsync<EdgeBlock.Cli.DaemonRefusedException>(() => api.SendAsync(HttpMethod.Get, "v1/subsystems/nqn.2026-11.io.edgeblock:nosuch"));
        Assert.Equal(404, missing.Status);
        Assert.Contains("nqn.2026-11.io.edgeblock:nosuch", missing.Detail);
        Assert.Equal(1, Json(await d.CliAsync("listener", "list", "--json")).GetArrayLength());
    }

    [Fact]
    public async Task NoDaemon_ExitsWith3_AndSaysHowToStartOne()
    {
        string socket = Path.Combine(Path.GetTempPath(), "ebm-none-" + Guid.NewGuid().ToString("N")[..8] + ".sock");
        var r = await TestDaemon.RunCliAsync("status", "--api-socket", socket);
        Assert.Equal(3, r.ExitCode);
        Assert.Contains(socket, r.Error);
        Assert.Contains("edgeblock serve", r.Error);
    }

    [Fact]
    public async Task Usage_MissingBackend_ExitsWith1_NamingWhatToGive_BeforeAskingTheDaemon()
    {
        // No daemon listens on this socket: exit 1 (not 3) shows the CLI refused before calling it.
        var r = await TestDaemon.RunCliAsync("namespace", "add", Vm1, "--api-socket", Path.Combine(Path.GetTempPath(), $"none-{Guid.NewGuid():N}.sock"));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("--backend or --volume", r.Error);
    }

    [Theory]
    [InlineData("nqn.2026-11.io.edgeblock:vm\nforged log line", "U+000A")]
    [InlineData("nqn.2026-11.io.edgeblock:a/b", "'/'")]
    public async Task SubsystemCreate_NqnWithControlCharacterOrSlash_IsRefused_AndNothingIsCreated(string nqn, string why)
    {
        await using var d = await TestDaemon.StartAsync();
        string before = await File.ReadAllTextAsync(d.ConfigPath);

        var r = await d.CliAsync("subsystem", "create", nqn, "--allow-any-host");

        Assert.True(r.ExitCode == 2, r.ToString());
        Assert.Contains(why, r.Error);
        Assert.Equal(before, await File.ReadAllTextAsync(d.ConfigPath));
    }

    [Theory]
    [InlineData("GET", "/v1/no-such-thing", 404)]
    [InlineData("PUT", "/v1/status", 405)]
    public async Task WebLayerRefusal_UnknownRouteOrMethod_IsProblemJson_NotAnEmptyBody(string method, string path, int status)
    {
        await using var d = await TestDaemon.StartAsync();
        using var http = d.CreateHttpClient();

        using var response = await http.SendAsync(new HttpRequestMessage(new HttpMethod(method), path));

        Assert.Equal(status, (int)response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(status, problem.GetProperty("status").GetInt32());
    }

    [Fact]
    public async Task SecondDaemonOnTheSameSocket_IsRefused()
    {
        await using var d = await TestDaemon.StartAsync();
        var options = d.Options with { DataDirectory = Path.Combine(d.Directory, "other") };
        var ex = await Assert.ThrowsAnyAsync<InvalidOperationException>(() => DaemonHost.StartAsync(options));
        Assert.Contains("another EdgeBlock daemon", ex.Message);
        Ok(await d.CliAsync("status"));
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}
