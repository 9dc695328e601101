using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using EdgeBlock.Daemon.KernelEngine;
using EdgeBlock.Daemon.Management;
using EdgeBlock.Daemon.Tests.KernelEngine;
using EdgeBlock.Target;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeBlock.Daemon.Tests;

/// <summary>
/// The management layer talks to <see cref="ITargetEngine"/> only: the same API calls and imports, through
/// EdgeBlock's own engine and through the kernel engine (on a fake configfs), give the same answers, the
/// same desired state and file, and each engine serves exactly that state.
/// </summary>
public sealed class EngineSeamTests : IDisposable
{
    private const string A = "nqn.2026-12.io.edgeblock:seam-a";
    private const string B = "nqn.2026-12.io.edgeblock:seam-b";
    private const string C = "nqn.2026-12.io.edgeblock:seam-c";
    private const string Host1 = "nqn.2014-08.org.nvmexpress:uuid:11111111-1111-1111-1111-111111111111";
    private static readonly Guid UuidA1 = Guid.Parse("2a0e0d0c-0b0a-4908-8706-050403020101");
    private static readonly Guid UuidA2 = Guid.Parse("2a0e0d0c-0b0a-4908-8706-050403020102");
    private static readonly Guid UuidB1 = Guid.Parse("2b0e0d0c-0b0a-4908-8706-050403020101");
    private static readonly Guid UuidC1 = Guid.Parse("2c0e0d0c-0b0a-4908-8706-050403020101");

    private readonly FakeConfigfs _fs = new();
    private readonly Socket _busy = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    private readonly string _busyAddress;

    public EngineSeamTests()
    {
        _busy.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _busy.Listen();
        _busyAddress = _busy.LocalEndPoint!.ToString()!;
        _fs.BusyAddresses.Add(_busyAddress); // the kernel's port bind fails there as our listener's does
    }

    public void Dispose()
    {
        _busy.Dispose();
        _fs.Dispose();
    }

    /// <summary>
    /// One engine under a management service, each in its own data directory; what it serves as "NQN/NSID" and
    /// "HOSTNQN->NQN" (hosts admitted by list); <paramref name="Closed"/> completes when removed devices closed.
    /// </summary>
    private sealed record Rig(ManagementService Service, ITargetEngine Engine, string DataDirectory, Func<IReadOnlyList<string>> Served, Func<Task> Closed);

    private Rig OwnEngine()
    {
        string data = Path.Combine(_fs.Base, "own");
        Directory.CreateDirectory(data);
        var target = new NvmeTarget(NullLogger.Instance);
        var teardown = new DeviceTeardown(NullLogger.Instance);
        var engine = new EdgeBlockEngine(target, data, NullLogger.Instance, NullLogger.Instance, teardown: teardown);
        var service = new ManagementService(target, engine, new ConfigStore(Path.Combine(data, "edgeblock.json")), data, NullLogger.Instance);
        return new Rig(service, engine, data, () =>
            target.Subsystems.SelectMany(s => s.Namespaces.Keys.Select(n => $"{s.NqnName}/{n}")
                .Concat(s.AllowAnyHost ? [] : s.AllowedHosts.Select(h => $"{h}->{s.NqnName}"))).Order(StringComparer.Ordinal).ToList(),
            teardown.WhenClosedAsync);
    }

    private Rig KernelEngine()
    {
        var engine = new KernelTarget(_fs.Root, _fs.DataDirectory, NullLogger.Instance, _fs);
        var service = new ManagementService(new NvmeTarget(NullLogger.Instance), engine, new ConfigStore(Path.Combine(_fs.DataDirectory, "edgeblock.json")),
            _fs.DataDirectory, NullLogger.Instance);
        string R(params string[] parts) => Path.Combine([_fs.Root, .. parts]);
        return new Rig(service, engine, _fs.DataDirectory, () =>
            _fs.List(R("subsystems")).SelectMany(s => _fs.List(R("subsystems", s, "namespaces")).Select(n => $"{s}/{n}")
                .Concat(_fs.List(R("subsystems", s, "allowed_hosts")).Select(h => $"{h}->{s}"))).Order(StringComparer.Ordinal).ToList(),
            () => Task.CompletedTask);
    }

    /// <summary>The same calls through either engine; each outcome as a line: "ok RESULT", or the refusal's status (the wording is the engine's own).</summary>
    private static async Task<List<string>> Script(Rig rig, string busyAddress)
    {
        var outcomes = new List<string>();
        async Task Step(string what, Func<Task<string>> call)
        {
            try
            {
                outcomes.Add($"{what}: ok {await call()}");
            }
            catch (ManagementException ex)
            {
                outcomes.Add($"{what}: {ex.Status}{(ex.Message.StartsWith("import stopped, nothing changed:", StringComparison.Ordinal) ? " import stopped, nothing changed" : "")}");
            }
            outcomes.Add($"{what}: served {string.Join(", ", rig.Served())}");
        }
        var s = rig.Service;
        await s.StartAsync(new DesiredState(), persist: true);
        await Step("create A", async () => (await s.CreateSubsystemAsync(new CreateSubsystemRequest(A, Hosts: [Host1]))).Nqn);
        await Step("namespace A/1", async () => (await s.AddNamespaceAsync(A, new AddNamespaceRequest("file:a.img:1M", Uuid: UuidA1))).Uuid.ToString());
        await Step("namespace A/2", async () => (await s.AddNamespaceAsync(A, new AddNamespaceRequest("file:a2.img:1M", 2, UuidA2))).Nsid.ToString());
        await Step("listener", async () => (await s.AddListenerAsync(new AddListenerRequest("127.0.0.1:0"))).Address);
        await Step("busy listener", async () => (await s.AddListenerAsync(new AddListenerRequest(busyAddress))).Address);
        await Step("allow any", async () => (await s.UpdateSubsystemAsync(A, new UpdateSubsystemRequest(true))).AllowAnyHost.ToString());
        await Step("remove A/2", async () => { await s.RemoveNamespaceAsync(A, 2); return ""; });

        var b = new DesiredState { Subsystems = [new SubsystemSpec { Nqn = B, AllowAnyHost = true, Namespaces = [new NamespaceSpec { Nsid = 1, Backend = "file:b.img:1M", Uuid = UuidB1 }] }] };
        await Step("import B", async () => string.Join("; ", (await s.ImportAsync(Import(b))).Changes));
        var c = new DesiredState
        {
            Listeners = [new ListenerSpec { Address = busyAddress }],
            Subsystems = [new SubsystemSpec { Nqn = C, AllowAnyHost = true, Namespaces = [new NamespaceSpec { Nsid = 1, Backend = "file:c.img:1M", Uuid = UuidC1 }] }],
        };
        await Step("import C (port busy)", async () => string.Join("; ", (await s.ImportAsync(Import(c))).Changes));
        await Step("delete B", async () => { await s.DeleteSubsystemAsync(B); return ""; });
        await Step("remove host", async () => string.Join(",", (await s.RemoveHostAsync(A, Host1)).Hosts));
        outcomes.Add("desired: " + JsonSerializer.Serialize(s.Desired, ConfigJson.Options));
        outcomes.Add("file: " + File.ReadAllText(s.ConfigPath));
        return outcomes;
    }

    private static ConfigImportRequest Import(DesiredState state) =>
        new(JsonSerializer.SerializeToElement(state, ConfigJson.Options), Format: "edgeblock");

    [Fact]
    public async Task ManagementService_TheSameChangesThroughEitherEngine_GiveTheSameOutcomesAndServeTheDesiredState()
    {
        var own = OwnEngine();
        var kernel = KernelEngine();
        List<string> ownOutcomes, kernelOutcomes;
        await using (own.Engine)
        {
            ownOutcomes = (await Script(own, _busyAddress)).Select(l => l.Replace(own.DataDirectory, "DATA")).ToList();
        }
        kernelOutcomes = (await Script(kernel, _busyAddress)).Select(l => l.Replace(kernel.DataDirectory, "DATA")).ToList();

        Assert.Equal(ownOutcomes, kernelOutcomes);
        // What the script does, engine aside: the refusals changed nothing that is served.
        string Served(string step) => ownOutcomes.Single(l => l.StartsWith($"{step}: served", StringComparison.Ordinal))[(step.Length + 9)..];
        Assert.Contains("busy listener: 409", ownOutcomes);
        Assert.Equal(Served("listener"), Served("busy listener"));
        Assert.Contains("import C (port busy): 409 import stopped, nothing changed", ownOutcomes);
        Assert.Equal($"{A}/1, {B}/1", Served("import C (port busy)"));
        Assert.Equal($"{A}/1", Served("remove host"));
    }

    [Fact]
    public async Task AddVhost_UnderTheKernelEngine_RefusedByTheEngineWithTodaysMessageAndNothingChanged()
    {
        var kernel = KernelEngine();
        await kernel.Service.StartAsync(new DesiredState(), persist: true);
        string saved = File.ReadAllText(kernel.Service.ConfigPath);

        var ex = await Assert.ThrowsAsync<ManagementException>(() =>
            kernel.Service.AddVhostAsync(new AddVhostRequest("vm.sock", "file:v.img:1M")));

        Assert.Equal(400, ex.Status);
        Assert.Equal("vhost-user exports are served by EdgeBlock's own engine; this daemon runs --engine kernel", ex.Message);
        Assert.Equal(saved, File.ReadAllText(kernel.Service.ConfigPath));
        Assert.Empty(kernel.Service.VhostExports());
    }

    [Fact]
    public async Task ApplyAsync_ADiffThenItsInverse_LeavesEitherEngineWhereItWas()
    {
        var before = new DesiredState { Subsystems = [new SubsystemSpec { Nqn = A, AllowAnyHost = true, Namespaces = [new NamespaceSpec { Nsid = 1, Backend = "file:a.img:1M", Uuid = UuidA1 }] }] };
        var after = new DesiredState
        {
            Listeners = [new ListenerSpec { Address = "127.0.0.1:0" }],
            Subsystems =
            [
                new SubsystemSpec { Nqn = A, Hosts = [Host1], Namespaces = [new NamespaceSpec { Nsid = 2, Backend = "file:a2.img:1M", Uuid = UuidA2 }] },
                new SubsystemSpec { Nqn = B, AllowAnyHost = true, Namespaces = [new NamespaceSpec { Nsid = 1, Backend = "file:b.img:1M", Uuid = UuidB1 }] },
            ],
        };
        foreach (var rig in new[] { OwnEngine(), KernelEngine() })
        {
            await using var engine = rig.Engine;
            await engine.StartAsync(before);
            var start = rig.Served();
            var diff = StateDiff.Between(before, after, rig.DataDirectory);

            await engine.ApplyAsync(diff);
            Assert.Equal(new[] { $"{A}/2", $"{B}/1", $"{Host1}->{A}" }.Order(StringComparer.Ordinal), rig.Served());
            await rig.Closed(); // namespace 1's file is free again (nothing was in flight: at once)
            await engine.ApplyAsync(diff.Inverse());
            Assert.Equal(start, rig.Served());
            Assert.Equal(0, engine.ListenerCount);
        }
    }
}
