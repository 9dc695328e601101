using System.CommandLine;
using System.Text.Json;
using EdgeBlock.Cli;
using EdgeBlock.Daemon;
using EdgeBlock.Initiator;
using EdgeBlock.Nvme;

namespace EdgeBlock.Management.Tests;

/// <summary>
/// Pools and volumes through the real daemon and the real CLI: a pool over two files, thin volumes
/// exported as namespaces, I/O from the .NET initiator, a quota that stops writes with Capacity
/// Exceeded, a restart that brings everything back with the same identifiers, and refusals.
/// </summary>
public sealed class PoolEndToEndTests
{
    private const string Nqn = DaemonOptions.DefaultSubsystemNqn;

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

    /// <summary>`edgeblock ARGS --api-socket SOCKET` with the pool commands registered (as Program.cs does).</summary>
    private static async Task<CliResult> Cli(TestDaemon d, params string[] args)
    {
        var root = ManagementCommands.CreateRoot();
        PoolCommands.AddTo(root);
        var output = new StringWriter();
        var error = new StringWriter();
        int code = await root.Parse([.. args, "--api-socket", d.Socket]).InvokeAsync(new InvocationConfiguration { Output = output, Error = error });
        return new CliResult(code, output.ToString(), error.ToString());
    }

    private static async Task<NvmeController> ConnectAsync(TestDaemon d)
    {
        var ep = d.NvmeEndPoint;
        var connected = await NvmeHost.ConnectAsync(ep.Address.ToString(), ep.Port, Nqn, NvmeHost.HostNqnFromId(Guid.NewGuid()), ioQueues: 1);
        return connected.Controller ?? throw new Xunit.Sdk.XunitException($"connect failed: {connected.FailedStep} {connected.Status}");
    }

    private static byte[] Pattern(int bytes, int seed)
    {
        var data = new byte[bytes];
        new Random(seed).NextBytes(data);
        return data;
    }

    private static async Task CreatePoolAsync(TestDaemon d)
    {
        string d0 = Path.Combine(d.Directory, "d0.img"), d1 = Path.Combine(d.Directory, "d1.img");
        var created = await Cli(d, "pool", "create", "p1", $"{d0}:64M", $"{d1}:64M");
        Ok(created);
        Assert.Contains("pool p1 created: 2 drive(s)", created.Output);
    }

    [Fact]
    public async Task PoolOverTwoFiles_VolumesExported_WrittenByHost_BackAfterRestart_WithTheSameNguid()
    {
        await using var d = await TestDaemon.StartAsync();
        await CreatePoolAsync(d);
        Ok(await Cli(d, "volume", "create", "p1/a", "--size", "32M", "--reserve", "8M"));
        Ok(await Cli(d, "volume", "create", "p1/b", "--size", "16M", "--group", "t"));
        Ok(await Cli(d, "group", "set", "p1/t", "--quota", "4M"));

        var pool = Json(await Cli(d, "pool", "show", "p1", "--json"));
        Assert.Equal("online", pool.GetProperty("state").GetString());
        Assert.Equal(2, pool.GetProperty("drives").GetArrayLength());
        Assert.Equal(8L << 20, pool.GetProperty("reserved_bytes").GetInt64());
        Assert.Equal(0, pool.GetProperty("allocated_bytes").GetInt64());
        Guid uuidA = Json(await Cli(d, "volume", "show", "p1/a", "--json")).GetProperty("uuid").GetGuid();
        Guid uuidB = Json(await Cli(d, "volume", "show", "p1/b", "--json")).GetProperty("uuid").GetGuid();

        var addA = await Cli(d, "namespace", "add", Nqn, "--nsid", "2", "--volume", "p1/a");
        Ok(addA);
        Assert.Contains(uuidA.ToString(), addA.Output);
        Ok(await Cli(d, "namespace", "add", Nqn, "--nsid", "3", "--backend", "volume:p1/b"));
        Assert.True(Json(await Cli(d, "volume", "show", "p1/a", "--json")).GetProperty("exported").GetBoolean());

        byte[] data = Pattern(4 * 4096, 1);
        await using (var host = await ConnectAsync(d))
        {
            var ns = (await host.IdentifyNamespaceAsync(2)).Value!;
            Assert.Equal(4096, ns.BlockSize);
            Assert.Equal((32L << 20) / 4096, ns.Nsze);
            Assert.Equal(uuidA.ToByteArray(bigEndian: true), ns.Nguid);
            Assert.Equal(uuidB.ToByteArray(bigEndian: true), (await host.IdentifyNamespaceAsync(3)).Value!.Nguid);

            Assert.True((await host.WriteAsync(2, 10, 4, data)).IsSuccess);
            Assert.True((await host.FlushAsync(2)).IsSuccess);
            var back = new byte[data.Length];
            Assert.True((await host.ReadAsync(2, 10, 4, back)).IsSuccess);
            Assert.Equal(data, back);

            // Group t may allocate 4 extents of 1 MiB: the fifth extent written is refused with Capacity Exceeded.
            byte[] block = Pattern(4096, 2);
            for (int extent = 0; extent < 4; extent++)
                Assert.True((await host.WriteAsync(3, (ulong)(extent * 256), 1, block)).IsSuccess, $"extent {extent}");
            var refused = await host.WriteAsync(3, 4 * 256, 1, block);
            Assert.Equal(StatusCodeType.Generic, refused.Status.Sct);
            Assert.Equal(0x81, refused.Status.Sc);
            // Volume a is not in the group: it keeps working.
            Assert.True((await host.WriteAsync(2, 1000, 1, block)).IsSuccess);
            // Discarding space in b makes room again.
            Assert.True((await host.DeallocateAsync(3, 0, 256)).IsSuccess);
            Assert.True((await host.FlushAsync(3)).IsSuccess);
            var retry = await host.WriteAsync(3, 4 * 256, 1, block);
            for (int i = 0; i < 50 && !retry.IsSuccess; i++)
            {
                await Task.Delay(100); // freed extents return at the next commit
                retry = await host.WriteAsync(3, 4 * 256, 1, block);
            }
            Assert.True(retry.IsSuccess, retry.Status.ToString());
        }
        var shown = Json(await Cli(d, "pool", "show", "p1", "--json"));
        Assert.True(shown.GetProperty("counters").GetProperty("capacity_exceeded").GetInt64() >= 1);
        var check = await Cli(d, "pool", "check", "p1");
        Ok(check);
        Assert.Contains("consistent", check.Output);
        string namespacesBefore = Json(await Cli(d, "namespace", "list", Nqn, "--json")).GetRawText();
        string volumesBefore = Json(await Cli(d, "volume", "list", "p1", "--json")).GetRawText();

        await d.RestartAsync();

        Assert.Equal("online", Json(await Cli(d, "pool", "show", "p1", "--json")).GetProperty("state").GetString());
        Assert.Equal(namespacesBefore, Json(await Cli(d, "namespace", "list", Nqn, "--json")).GetRawText());
        Assert.Equal(volumesBefore, Json(await Cli(d, "volume", "list", "p1", "--json")).GetRawText());
        Ok(await Cli(d, "pool", "check", "p1"));
        await using (var host = await ConnectAsync(d))
        {
            var ns = (await host.IdentifyNamespaceAsync(2)).Value!;
            Assert.Equal(uuidA.ToByteArray(bigEndian: true), ns.Nguid);
            var back = new byte[data.Length];
            Assert.True((await host.ReadAsync(2, 10, 4, back)).IsSuccess);
            Assert.Equal(data, back);
        }

        // Unexport, then the volume can go; the space comes back.
        Ok(await Cli(d, "namespace", "remove", Nqn, "2"));
        Ok(await Cli(d, "volume", "delete", "p1/a"));
        Assert.Equal(1, Json(await Cli(d, "pool", "show", "p1", "--json")).GetProperty("volumes").GetInt32());
    }

    [Fact]
    public async Task Refusals_NameTheProblem_AndChangeNothing()
    {
        await using var d = await TestDaemon.StartAsync();
        await CreatePoolAsync(d);
        Ok(await Cli(d, "volume", "create", "p1/a", "--size", "16M"));
        Ok(await Cli(d, "namespace", "add", Nqn, "--nsid", "2", "--volume", "p1/a"));
        string configBefore = await File.ReadAllTextAsync(d.ConfigPath);
        string volumesBefore = (await Cli(d, "volume", "list", "--json")).Output;
        string poolsBefore = (await Cli(d, "pool", "list")).Output;
        string d2 = Path.Combine(d.Directory, "d2.img");

        Refused(await Cli(d, "pool", "create", "p1", $"{d2}:64M"), "pool p1 already exists");
        Refused(await Cli(d, "pool", "create", "p2", Path.Combine(d.Directory, "d0.img")), "d0.img", "drive 0 of pool p1");
        Refused(await Cli(d, "volume", "create", "nopool/x", "--size", "1G"), "no pool nopool");
        Refused(await Cli(d, "volume", "create", "p1/x", "--size", "12Q"), "12Q", "not a size");
        Refused(await Cli(d, "volume", "create", "p1/x", "--size", "1000"), "multiple of 4096");
        Refused(await Cli(d, "volume", "create", "p1/x", "--size", "1G", "--reserve", "900M"), "cannot reserve");
        Refused(await Cli(d, "volume", "create", "p1/a", "--size", "1G"), "p1/a already exists");
        Refused(await Cli(d, "volume", "delete", "p1/a"), "p1/a is exported", "remove its namespace first");
        Refused(await Cli(d, "volume", "resize", "p1/a", "--size", "32M"), "exported");
        Refused(await Cli(d, "namespace", "add", Nqn, "--volume", "p1/a"), "p1/a", "exported");
        Refused(await Cli(d, "namespace", "add", Nqn, "--volume", "p1/nosuch"), "p1/nosuch does not exist");
        Refused(await Cli(d, "namespace", "add", Nqn, "--volume", "nopool/a"), "no pool nopool");
        Refused(await Cli(d, "volume", "delete", "p1/nosuch"), "does not exist");
        Refused(await Cli(d, "pool", "show", "nopool"), "no pool nopool");
        Assert.Equal(1, (await Cli(d, "volume", "create", "p1", "--size", "1G")).ExitCode); // usage: not POOL/NAME

        Assert.Equal(configBefore, await File.ReadAllTextAsync(d.ConfigPath));
        Assert.Equal(volumesBefore, (await Cli(d, "volume", "list", "--json")).Output);
        Assert.Equal(poolsBefore, (await Cli(d, "pool", "list")).Output);
        Assert.False(File.Exists(d2));
        Assert.False(Directory.Exists(Path.Combine(d.Directory, "pools", "p2")));
        Assert.Single(Json(await Cli(d, "pool", "list", "--json")).EnumerateArray());
    }

    [Fact]
    public async Task PoolThatDoesNotOpen_RefusesItsNamespaces_DaemonStillStarts()
    {
        await using var d = await TestDaemon.StartAsync();
        await CreatePoolAsync(d);
        Ok(await Cli(d, "volume", "create", "p1/a", "--size", "16M"));
        Ok(await Cli(d, "namespace", "add", Nqn, "--nsid", "2", "--volume", "p1/a"));
        await d.StopAsync();
        File.Move(Path.Combine(d.Directory, "d1.img"), Path.Combine(d.Directory, "d1.moved"));

        await d.RestartAsync();
        var pool = Json(await Cli(d, "pool", "show", "p1", "--json"));
        Assert.Equal("failed", pool.GetProperty("state").GetString());
        Assert.Contains("d1.img", pool.GetProperty("error").GetString());
        Assert.Null(d.Daemon.Target.FindSubsystem(Nqn)!.FindNamespace(2));
        Assert.NotNull(d.Daemon.Target.FindSubsystem(Nqn)!.FindNamespace(1));
        Refused(await Cli(d, "volume", "list", "p1"), "did not open", "d1.img");

        // Put the drive back: after a restart all is there again.
        File.Move(Path.Combine(d.Directory, "d1.moved"), Path.Combine(d.Directory, "d1.img"));
        await d.RestartAsync();
        Assert.Equal("online", Json(await Cli(d, "pool", "show", "p1", "--json")).GetProperty("state").GetString());
        Assert.NotNull(d.Daemon.Target.FindSubsystem(Nqn)!.FindNamespace(2));
    }

    [Fact]
    public async Task SnapshotClone_AndMetrics()
    {
        await using var d = await TestDaemon.StartAsync();
        await CreatePoolAsync(d);
        Ok(await Cli(d, "volume", "create", "p1/a", "--size", "16M"));
        Ok(await Cli(d, "volume", "snapshot", "p1/a@s1"));
        Ok(await Cli(d, "volume", "clone", "p1/a@s1", "p1/c"));
        Refused(await Cli(d, "namespace", "add", Nqn, "--backend", "volume:p1/a@s1"), "snapshot");
        var clone = Json(await Cli(d, "volume", "show", "p1/c", "--json"));
        Assert.Equal("a@s1", clone.GetProperty("origin").GetString());
        var table = await Cli(d, "volume", "list");
        Ok(table);
        Assert.Contains("p1/a@s1", table.Output);
        Ok(await Cli(d, "volume", "resize", "p1/c", "--size", "32M"));
        Refused(await Cli(d, "volume", "resize", "p1/c", "--size", "16M"), "--force");
        Ok(await Cli(d, "volume", "resize", "p1/c", "--size", "16M", "--force"));
        Ok(await Cli(d, "volume", "delete", "p1/a@s1"));
        Ok(await Cli(d, "pool", "add-drive", "p1", $"{Path.Combine(d.Directory, "d2.img")}:32M"));
        Assert.Equal(3, Json(await Cli(d, "pool", "show", "p1", "--json")).GetProperty("drives").GetArrayLength());
        var groups = await Cli(d, "group", "list", "p1");
        Ok(groups);

        var metrics = new DaemonMetrics(d.Daemon.Target, d.Daemon.Pools);
        string text = await metrics.ScrapeAsync();
        Assert.Contains("edgeblock_pool_size_bytes{pool=\"p1\"}", text);
        Assert.Contains("edgeblock_pool_free_bytes{pool=\"p1\"}", text);
        Assert.Contains("edgeblock_pool_capacity_exceeded_total{pool=\"p1\"} 0", text);
    }
}
