using System.Diagnostics;
using System.Text.Json;
using EdgeBlock.Daemon;
using EdgeBlock.Initiator;

namespace EdgeBlock.Management.Tests;

/// <summary>Alone: a limit held within 5% over NVMe/TCP needs the QoS timer on time, which parallel tests' load delays.</summary>
[CollectionDefinition(nameof(QosEndToEndTests), DisableParallelization = true)]
public sealed class QosEndToEndCollection;

/// <summary>
/// Volume and group QoS through the real daemon and the real CLI: a limit held over the NVMe/TCP path with the .NET
/// initiator, refusals naming what is wrong, and QoS as desired state (export, import, restart, volume delete).
/// </summary>
[Collection(nameof(QosEndToEndTests))]
public sealed class QosEndToEndTests
{
    private const string Nqn = DaemonOptions.DefaultSubsystemNqn;

    private static JsonElement Json(CliResult r)
    {
        r.AssertOk();
        return JsonDocument.Parse(r.Output).RootElement;
    }

    private static async Task<TestDaemon> StartWithPoolAsync()
    {
        var d = await TestDaemon.StartAsync();
        (await d.CliAsync("pool", "create", "p1", $"{Path.Combine(d.Directory, "d0.img")}:64M")).AssertOk();
        (await d.CliAsync("volume", "create", "p1/a", "--size", "16M", "--group", "t")).AssertOk();
        return d;
    }

    [Fact]
    public async Task VolumeIopsLimit_HostReadsAtQd32OverNvmeTcp_HoldsWithinFivePercent()
    {
        await using var d = await StartWithPoolAsync();
        (await d.CliAsync("namespace", "add", Nqn, "--nsid", "2", "--volume", "p1/a")).AssertOk();
        var set = await d.CliAsync("volume", "set", "p1/a", "--iops", "1000");
        set.AssertOk();
        Assert.Contains("qos iops 1000 (burst default)", set.Output);

        var ep = d.NvmeEndPoint;
        var connected = await NvmeHost.ConnectAsync(ep.Address.ToString(), ep.Port, Nqn, NvmeHost.HostNqnFromId(Guid.NewGuid()), ioQueues: 1);
        await using var host = connected.Controller ?? throw new Xunit.Sdk.XunitException($"connect failed: {connected.FailedStep}");

        // Half a second spends the burst (100 I/Os at the default: a tenth of a second); then two seconds are counted.
        long completed = 0, failed = 0;
        var measuring = new Stopwatch();
        var stop = Stopwatch.StartNew();
        async Task Worker(int i)
        {
            var buffer = new byte[4096];
            while (stop.Elapsed < TimeSpan.FromSeconds(2.5))
            {
                var c = await host.ReadAsync(2, (ulong)(i * 8), 1, buffer);
                if (!c.IsSuccess) Interlocked.Increment(ref failed);
                else if (measuring.IsRunning) Interlocked.Increment(ref completed);
            }
        }
        var workers = Enumerable.Range(0, 32).Select(Worker).ToList();
        await Task.Delay(500);
        measuring.Start();
        await Task.WhenAll(workers);
        measuring.Stop();

        double iops = completed / measuring.Elapsed.TotalSeconds;
        Assert.Equal(0, failed);
        Assert.InRange(iops, 1000 * 0.95, 1000 * 1.05);
        var qos = Json(await d.CliAsync("volume", "show", "p1/a", "--json")).GetProperty("qos");
        Assert.Equal(1000, qos.GetProperty("iops").GetInt64());
        Assert.True(qos.GetProperty("throttled_seconds").GetDouble() > 1.5, qos.ToString()); // 32 readers against 1000 IOPS: always some waiting
        using var http = d.CreateHttpClient();
        var volume = Assert.Single(JsonDocument.Parse(await http.GetStringAsync("/v1/stats")).RootElement.GetProperty("volumes").EnumerateArray());
        Assert.Equal("p1/a", volume.GetProperty("volume").GetString());
        Assert.Equal("iops 1000", volume.GetProperty("limits").GetString());
        Assert.True(volume.GetProperty("throttled_seconds").GetDouble() > 1.5);
    }

    [Fact]
    public async Task VolumeSet_BadValuesOrUnknownNames_RefusedWithExitTwoNamingTheField()
    {
        await using var d = await StartWithPoolAsync();
        (await d.CliAsync("volume", "snapshot", "p1/a@s")).AssertOk();

        (await d.CliAsync("volume", "set", "p1/nope", "--iops", "100")).AssertRefused("p1/nope", "does not exist");
        (await d.CliAsync("volume", "set", "p2/a", "--iops", "100")).AssertRefused("no pool p2");
        (await d.CliAsync("volume", "set", "p1/a", "--iops", "-5")).AssertRefused("iops", "'-5'");
        (await d.CliAsync("volume", "set", "p1/a", "--iops", "1000000000")).AssertRefused("iops", "out of range");
        (await d.CliAsync("volume", "set", "p1/a", "--bw", "fast")).AssertRefused("bandwidth", "'fast'");
        (await d.CliAsync("volume", "set", "p1/a", "--bw", "2P/s")).AssertRefused("bandwidth", "out of range");
        (await d.CliAsync("volume", "set", "p1/a", "--weight", "20000")).AssertRefused("weight", "out of range");
        (await d.CliAsync("volume", "set", "p1/a", "--burst-iops", "10")).AssertRefused("burst_iops", "needs its rate");
        using var http = d.CreateHttpClient(); // the CLI takes no snapshot name here; the API refuses one itself
        var snapshot = await http.PutAsync("/v1/pools/p1/volumes/a@s/qos", new StringContent("{\"iops\": \"10\"}", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(System.Net.HttpStatusCode.NotFound, snapshot.StatusCode);
        Assert.Contains("is a snapshot", await snapshot.Content.ReadAsStringAsync());
        Assert.Equal(1, (await d.CliAsync("volume", "set", "p1/a")).ExitCode); // usage: nothing to set

        Assert.False(File.ReadAllText(d.ConfigPath).Contains("qos"), "a refused change leaves the file as it was");
    }

    [Fact]
    public async Task GroupSet_QosAndRefusals_ListedWithTheGroup()
    {
        await using var d = await StartWithPoolAsync();

        var set = await d.CliAsync("group", "set", "p1/t", "--iops", "5000", "--bw", "100M/s");
        set.AssertOk();
        Assert.Contains("qos iops 5000 (burst default), bandwidth 100 MiB/s (burst default)", set.Output);
        var quota = await d.CliAsync("group", "set", "p1/t", "--quota", "8M");
        quota.AssertOk();
        JsonElement group = Assert.Single(Json(await d.CliAsync("group", "list", "p1", "--json")).EnumerateArray());
        Assert.Equal(8L << 20, group.GetProperty("quota_bytes").GetInt64()); // the quota did not clear the QoS, nor the other way round
        Assert.Equal(5000, group.GetProperty("qos").GetProperty("iops").GetInt64());
        Assert.Equal(100L << 20, group.GetProperty("qos").GetProperty("bytes_per_second").GetInt64());

        (await d.CliAsync("group", "set", "p2/t", "--iops", "100")).AssertRefused("no pool p2");
        (await d.CliAsync("group", "set", "p1/t", "--iops", "abc")).AssertRefused("iops", "'abc'");
        (await d.CliAsync("group", "set", "p1/new", "--bw", "-1")).AssertRefused("bandwidth");
        Assert.Single(Json(await d.CliAsync("group", "list", "p1", "--json")).EnumerateArray()); // a refused value made no group
        Assert.Equal(1, (await d.CliAsync("group", "set", "p1/t")).ExitCode);

        (await d.CliAsync("group", "set", "p1/t", "--iops", "none", "--bw", "0")).AssertOk();
        group = Assert.Single(Json(await d.CliAsync("group", "list", "p1", "--json")).EnumerateArray());
        Assert.False(group.TryGetProperty("qos", out _));
    }

    [Fact]
    public async Task Qos_KeptInTheDesiredState_ThroughRestartAndExport_DroppedWithTheVolume()
    {
        await using var d = await StartWithPoolAsync();
        (await d.CliAsync("volume", "set", "p1/a", "--iops", "300", "--burst-iops", "30", "--bw", "10M", "--weight", "4")).AssertOk();
        (await d.CliAsync("group", "set", "p1/t", "--iops", "900")).AssertOk();

        await d.RestartAsync();
        var qos = Json(await d.CliAsync("volume", "show", "p1/a", "--json")).GetProperty("qos");
        Assert.Equal(300, qos.GetProperty("iops").GetInt64());
        Assert.Equal(30, qos.GetProperty("burst_iops").GetInt64());
        Assert.Equal(10L << 20, qos.GetProperty("bytes_per_second").GetInt64());
        Assert.Equal(4, qos.GetProperty("weight").GetInt32());
        var export = await d.CliAsync("config", "export");
        export.AssertOk();
        Assert.Contains("\"volume\": \"p1/a\"", export.Output);
        Assert.Contains("\"group\": \"p1/t\"", export.Output);

        // Clearing one field keeps the rest.
        (await d.CliAsync("volume", "set", "p1/a", "--iops", "0")).AssertOk();
        qos = Json(await d.CliAsync("volume", "show", "p1/a", "--json")).GetProperty("qos");
        Assert.False(qos.TryGetProperty("iops", out _));
        Assert.False(qos.TryGetProperty("burst_iops", out _)); // a burst goes with its rate
        Assert.Equal(4, qos.GetProperty("weight").GetInt32());

        (await d.CliAsync("volume", "delete", "p1/a")).AssertOk();
        string config = File.ReadAllText(d.ConfigPath);
        Assert.DoesNotContain("p1/a", config);
        Assert.Contains("p1/t", config);
        (await d.CliAsync("volume", "create", "p1/a", "--size", "16M")).AssertOk();
        Assert.False(Json(await d.CliAsync("volume", "show", "p1/a", "--json")).TryGetProperty("qos", out _)); // a new volume of the name starts without
    }

    [Fact]
    public async Task ConfigImport_QosOfAnUnknownVolume_RefusedNamingTheField()
    {
        await using var d = await StartWithPoolAsync();
        string file = Path.Combine(d.Directory, "import.json");
        File.WriteAllText(file, """{"version": 1, "listeners": [], "subsystems": [], "qos": {"volumes": [{"volume": "p1/ghost", "iops": 10}], "groups": []}}""");

        (await d.CliAsync("config", "import", file)).AssertRefused("qos.volumes[0].volume", "p1/ghost");

        File.WriteAllText(file, """{"version": 1, "listeners": [], "subsystems": [], "qos": {"volumes": [{"volume": "p1/a", "iops": 10, "weight": 2}], "groups": []}}""");
        var imported = await d.CliAsync("config", "import", file);
        imported.AssertOk();
        Assert.Contains("qos volume p1/a: iops 10, weight 2", imported.Output);
        Assert.Equal(10, Json(await d.CliAsync("volume", "show", "p1/a", "--json")).GetProperty("qos").GetProperty("iops").GetInt64());
    }
}
