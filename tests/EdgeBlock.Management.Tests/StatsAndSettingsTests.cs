using System.CommandLine;
using System.Text.Json;
using EdgeBlock.Cli;
using EdgeBlock.Daemon;
using EdgeBlock.Daemon.Management;
using EdgeBlock.Initiator;
using EdgeBlock.Nvme;

namespace EdgeBlock.Management.Tests;

/// <summary>`edgeblock stats`, `subsystem set --allow-any-host`, config reload and the human tables, against a running daemon.</summary>
public sealed class StatsAndSettingsTests
{
    private const string Vm1 = "nqn.2026-11.io.edgeblock:vm1";
    private const string Vm4 = "nqn.2026-11.io.edgeblock:vm4";
    private const string Default = DaemonOptions.DefaultSubsystemNqn;

    private static async Task<CliResult> Cli(TestDaemon d, params string[] args)
    {
        var root = ManagementCommands.CreateRoot();
        StatsCommand.AddTo(root);
        var output = new StringWriter();
        var error = new StringWriter();
        int code = await root.Parse([.. args, "--api-socket", d.Socket]).InvokeAsync(new InvocationConfiguration { Output = output, Error = error });
        return new CliResult(code, output.ToString(), error.ToString());
    }

    private static void Ok(CliResult r) => Assert.True(r.ExitCode == 0, r.ToString());

    private static JsonElement Json(CliResult r)
    {
        Ok(r);
        return JsonDocument.Parse(r.Output).RootElement;
    }

    private static async Task<NvmeController> ConnectAsync(TestDaemon d, string nqn, string hostNqn)
    {
        var ep = d.NvmeEndPoint;
        var r = await NvmeHost.ConnectAsync(ep.Address.ToString(), ep.Port, nqn, hostNqn, ioQueues: 2);
        return r.Controller ?? throw new Xunit.Sdk.XunitException($"connect failed: {r.FailedStep} {r.Status}");
    }

    [Fact]
    public async Task Stats_ShowOpsBytesLatencyErrorsByStatus_ControllersAndProcess()
    {
        await using var d = await TestDaemon.StartAsync();
        string hostNqn = NvmeHost.HostNqnFromId(Guid.NewGuid());
        await using (var host = await ConnectAsync(d, Default, hostNqn))
        {
            var block = new byte[4096];
            for (int i = 0; i < 5; i++) Assert.True((await host.WriteAsync(1, (ulong)i * 8, 8, block)).IsSuccess);
            for (int i = 0; i < 3; i++) Assert.True((await host.ReadAsync(1, 0, 8, block)).IsSuccess);
            Assert.True((await host.FlushAsync(1)).IsSuccess);
            ulong blocks = (16UL << 20) / 512;
            Assert.Equal(NvmeStatus.LbaOutOfRange, (await host.ReadAsync(1, blocks, 1, new byte[512])).Status);

            var stats = Json(await Cli(d, "stats", "--json"));
            var ns = Assert.Single(stats.GetProperty("namespaces").EnumerateArray());
            Assert.Equal(Default, ns.GetProperty("subsystem").GetString());
            Assert.Equal(5, ns.GetProperty("write").GetProperty("ops").GetInt64());
            Assert.Equal(5 * 4096, ns.GetProperty("write").GetProperty("bytes").GetInt64());
            Assert.Equal(3, ns.GetProperty("read").GetProperty("ops").GetInt64()); // the refused read never reached the device: an error, not an op
            Assert.Equal(1, ns.GetProperty("other").GetProperty("ops").GetInt64());
            var writeLatency = ns.GetProperty("write").GetProperty("latency");
            Assert.Equal(5, writeLatency.GetProperty("count").GetInt64());
            Assert.True(writeLatency.GetProperty("p50_us").GetDouble() > 0);
            Assert.True(writeLatency.GetProperty("p99_us").GetDouble() >= writeLatency.GetProperty("p50_us").GetDouble());
            Assert.Equal(1, ns.GetProperty("errors").GetInt64());
            var error = Assert.Single(ns.GetProperty("errors_by_status").EnumerateArray());
            Assert.Equal("lba_out_of_range", error.GetProperty("status").GetString());
            Assert.Equal("0h", error.GetProperty("sct").GetString());
            Assert.Equal("80h", error.GetProperty("sc").GetString());

            var controller = Assert.Single(stats.GetProperty("controllers").EnumerateArray());
            Assert.Equal(hostNqn, controller.GetProperty("host_nqn").GetString());
            Assert.Equal(3, controller.GetProperty("queues").GetInt32()); // admin + 2 I/O
            var process = stats.GetProperty("process");
            Assert.Equal(Environment.ProcessId, process.GetProperty("process_id").GetInt32());
            Assert.True(process.GetProperty("cpu_seconds").GetDouble() > 0);
            Assert.True(process.GetProperty("rss_bytes").GetInt64() > 1 << 20);

            var one = Json(await Cli(d, "stats", Default, "1", "--json"));
            Assert.Equal(5, one.GetProperty("write").GetProperty("ops").GetInt64());

            var human = await Cli(d, "stats");
            Ok(human);
            Assert.Contains("P99 µs", human.Output);
            Assert.Contains("lba_out_of_range", human.Output);
            Assert.Contains(hostNqn, human.Output);
            Assert.Contains("rss", human.Output);
            Assert.DoesNotContain('\u001b', human.Output); // captured output: no ANSI
        }
        var missing = await Cli(d, "stats", Default, "9");
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("no running namespace 9", missing.Error);
    }

    [Fact]
    public async Task SubsystemSet_AllowAnyHostOff_DisconnectsUnlistedHosts_AndIsPersisted()
    {
        await using var d = await TestDaemon.StartAsync();
        string listed = NvmeHost.HostNqnFromId(Guid.NewGuid());
        string other = NvmeHost.HostNqnFromId(Guid.NewGuid());
        Ok(await Cli(d, "subsystem", "create", Vm1, "--allow-any-host"));
        Ok(await Cli(d, "subsystem", "add-host", Vm1, listed));
        await using var stays = await ConnectAsync(d, Vm1, listed);
        await using var goes = await ConnectAsync(d, Vm1, other);
        Assert.Equal(2, d.Daemon.Target.FindSubsystem(Vm1)!.Controllers.Count);

        var set = await Cli(d, "subsystem", "set", Vm1, "--allow-any-host", "false");
        Ok(set);
        Assert.Contains("only listed hosts", set.Output);
        var live = d.Daemon.Target.FindSubsystem(Vm1)!;
        Assert.False(live.AllowAnyHost);
        Assert.Equal(listed, Assert.Single(live.Controllers).HostNqn);
        Assert.True((await stays.KeepAliveAsync()).IsSuccess);
        var ep = d.NvmeEndPoint;
        Assert.False((await NvmeHost.ConnectAsync(ep.Address.ToString(), ep.Port, Vm1, other, ioQueues: 1)).IsSuccess);
        Assert.False(Json(await Cli(d, "subsystem", "show", Vm1, "--json")).GetProperty("allow_any_host").GetBoolean());
        Assert.Contains("\"allow_any_host\": false", await File.ReadAllTextAsync(d.ConfigPath));

        Ok(await Cli(d, "subsystem", "set", Vm1, "--allow-any-host", "true"));
        await using (var back = await ConnectAsync(d, Vm1, other)) Assert.True(d.Daemon.Target.FindSubsystem(Vm1)!.AllowAnyHost);

        await d.RestartAsync();
        Assert.True(d.Daemon.Target.FindSubsystem(Vm1)!.AllowAnyHost);
        Assert.Equal(1, (await Cli(d, "subsystem", "set", Vm1)).ExitCode); // the value is required
        Assert.Equal(2, (await Cli(d, "subsystem", "set", "nqn.2026-11.io.edgeblock:nosuch", "--allow-any-host", "true")).ExitCode);
    }

    [Fact]
    public async Task Reload_AppliesTheEditedFile_OrRefusesItNamingTheField()
    {
        await using var d = await TestDaemon.StartAsync();
        Ok(await Cli(d, "subsystem", "create", Vm1, "--allow-any-host"));
        var state = JsonSerializer.Deserialize<DesiredState>(await File.ReadAllTextAsync(d.ConfigPath), ConfigJson.Options)!;
        state.Subsystems.RemoveAll(s => s.Nqn == Vm1);
        state.Subsystems.Add(new SubsystemSpec { Nqn = Vm4, Namespaces = [new NamespaceSpec { Nsid = 2, Backend = "memory:8M" }] });
        Guid defaultUuid = state.FindSubsystem(Default)!.Namespaces[0].Uuid!.Value;
        state.FindSubsystem(Default)!.Namespaces[0].Uuid = null; // dropped by hand: the running namespace keeps its UUID
        await File.WriteAllTextAsync(d.ConfigPath, JsonSerializer.Serialize(state, ConfigJson.Options));

        var result = await d.Daemon.Management.ReloadAsync();
        Assert.Contains($"+ subsystem {Vm4} (no host may connect yet)", result.Changes);
        Assert.Contains(result.Changes, c => c.StartsWith($"- subsystem {Vm1}", StringComparison.Ordinal));
        Assert.Null(d.Daemon.Target.FindSubsystem(Vm1));
        Assert.Equal(8L << 20, d.Daemon.Target.FindSubsystem(Vm4)!.FindNamespace(2)!.BlockCount * 512);
        Assert.Equal(defaultUuid, d.Daemon.Target.FindSubsystem(Default)!.FindNamespace(1)!.Uuid);
        var saved = JsonSerializer.Deserialize<DesiredState>(await File.ReadAllTextAsync(d.ConfigPath), ConfigJson.Options)!;
        Assert.Equal(defaultUuid, saved.FindSubsystem(Default)!.Namespaces[0].Uuid); // written back
        Assert.NotNull(saved.FindSubsystem(Vm4)!.Namespaces[0].Uuid);
        Assert.Empty((await d.Daemon.Management.ReloadAsync()).Changes);

        string bad = (await File.ReadAllTextAsync(d.ConfigPath)).Replace(Vm4, "nqn.broken");
        await File.WriteAllTextAsync(d.ConfigPath, bad);
        var ex = await Assert.ThrowsAsync<ManagementException>(() => d.Daemon.Management.ReloadAsync());
        Assert.Contains("subsystems[1].nqn", ex.Message);
        Assert.Contains("nqn.broken", ex.Message);
        Assert.Contains("running state kept", ex.Message);
        Assert.NotNull(d.Daemon.Target.FindSubsystem(Vm4));
        Assert.Equal(bad, await File.ReadAllTextAsync(d.ConfigPath)); // the operator's file is left alone
        Assert.Equal(Vm4, Json(await Cli(d, "subsystem", "show", Vm4, "--json")).GetProperty("nqn").GetString());
    }

    [Fact]
    public async Task Tables_AreAlignedPlainText_WhenCaptured()
    {
        await using var d = await TestDaemon.StartAsync();
        Ok(await Cli(d, "subsystem", "create", Vm1));
        var list = await Cli(d, "subsystem", "list");
        Ok(list);
        var lines = list.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd()).Where(l => l.Length > 0).ToList();
        Assert.DoesNotContain('\u001b', list.Output);
        var header = lines.First(l => l.Contains("NQN"));
        var row = lines.First(l => l.Contains(Vm1));
        int afterNqn = row.IndexOf(Vm1, StringComparison.Ordinal) + Vm1.Length;
        int hostsCell = afterNqn + row[afterNqn..].TakeWhile(ch => ch == ' ').Count();
        Assert.Equal(header.IndexOf("HOSTS", StringComparison.Ordinal), hostsCell); // columns line up
        var show = await Cli(d, "subsystem", "show", Vm1);
        Ok(show);
        Assert.Contains("listed hosts only", show.Output);
        Assert.Contains("(none)", show.Output);
    }
}
