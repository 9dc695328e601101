using EdgeBlock.Daemon.KernelEngine;
using EdgeBlock.Daemon.Management;
using EdgeBlock.Target;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeBlock.Daemon.Tests.KernelEngine;

public sealed class KernelTargetTests : IDisposable
{
    private const string A = "nqn.2026-11.io.edgeblock:kernel-a";
    private const string B = "nqn.2026-11.io.edgeblock:kernel-b";
    private const string Host1 = "nqn.2014-08.org.nvmexpress:uuid:11111111-1111-1111-1111-111111111111";
    private const string Host2 = "nqn.2014-08.org.nvmexpress:uuid:22222222-2222-2222-2222-222222222222";
    private static readonly Guid UuidA1 = Guid.Parse("0f0e0d0c-0b0a-4908-8706-050403020100");
    private static readonly Guid UuidB1 = Guid.Parse("1f0e0d0c-0b0a-4908-8706-050403020101");

    private readonly FakeConfigfs _fs = new();
    private readonly string _diskA;
    private readonly string _diskB;

    public KernelTargetTests()
    {
        _diskA = Path.Combine(_fs.DataDirectory, "a.img");
        _diskB = Path.Combine(_fs.DataDirectory, "b.img");
        File.WriteAllBytes(_diskA, new byte[4096]);
        File.WriteAllBytes(_diskB, new byte[4096]);
    }

    public void Dispose() => _fs.Dispose();

    private KernelTarget NewEngine() => new(_fs.Root, _fs.DataDirectory, NullLogger.Instance, _fs);

    private string R(string rel) => Path.Combine(_fs.Root, rel);

    /// <summary>One change the way the management layer makes it: the diff from the applied state; a refusal surfaces as its cause.</summary>
    private void Change(KernelTarget engine, Action<DesiredState> edit)
    {
        var next = engine.Applied;
        edit(next);
        try
        {
            engine.ApplyAsync(StateDiff.Between(engine.Applied, next, _fs.DataDirectory)).GetAwaiter().GetResult();
        }
        catch (EngineChangeException ex)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(ex.Cause).Throw();
        }
    }

    private DesiredState TwoSubsystems() => new()
    {
        Listeners = [new ListenerSpec { Address = "127.0.0.1:4420" }],
        Subsystems =
        [
            new SubsystemSpec { Nqn = A, AllowAnyHost = true, Namespaces = [new NamespaceSpec { Nsid = 1, Backend = $"file:{_diskA}", Uuid = UuidA1 }] },
            new SubsystemSpec { Nqn = B, Hosts = [Host1], Namespaces = [new NamespaceSpec { Nsid = 1, Backend = "file:b.img", Uuid = UuidB1 }] },
        ],
    };

    [Fact]
    public async Task Start_NamespaceTheStoragePolicyRefused_StaysOutOfConfigfsUntilRemoved()
    {
        var engine = NewEngine();
        var state = TwoSubsystems();
        state.Subsystems[0].Namespaces.Add(new NamespaceSpec { Nsid = 2, Backend = "file:/etc/shadow", Uuid = Guid.NewGuid() });
        var refused = new StoragePolicy(_fs.DataDirectory, Path.Combine(_fs.DataDirectory, "edgeblock.json")).Refusals(state);
        Assert.Contains("/etc/shadow", Assert.Single(refused).Value);

        await engine.StartAsync(state, refused);
        Assert.True(Directory.Exists(R($"subsystems/{A}/namespaces/1")));
        Assert.False(Directory.Exists(R($"subsystems/{A}/namespaces/2")));

        // Later changes come as diffs of the desired state, which keeps it: it still stays out, and can be removed.
        var next = state.Clone();
        next.FindSubsystem(B)!.Hosts.Add(Host2);
        await engine.ApplyAsync(StateDiff.Between(state, next, _fs.DataDirectory));
        Assert.NotNull(new FileInfo(R($"subsystems/{B}/allowed_hosts/{Host2}")).LinkTarget);
        Assert.False(Directory.Exists(R($"subsystems/{A}/namespaces/2")));
        var removed = next.Clone();
        removed.FindSubsystem(A)!.Namespaces.RemoveAll(n => n.Nsid == 2);
        await engine.ApplyAsync(StateDiff.Between(next, removed, _fs.DataDirectory));
        Assert.True(Directory.Exists(R($"subsystems/{A}/namespaces/1")));
        Assert.False(Directory.Exists(R($"subsystems/{A}/namespaces/2")));
    }

    [Fact]
    public void Apply_BuildsPortsSubsystemsHostsAndNamespaces()
    {
        var engine = NewEngine();
        engine.Apply(TwoSubsystems());

        Assert.Equal("tcp", _fs.Read(R("ports/1/addr_trtype")));
        Assert.Equal("ipv4", _fs.Read(R("ports/1/addr_adrfam")));
        Assert.Equal("127.0.0.1", _fs.Read(R("ports/1/addr_traddr")));
        Assert.Equal("4420", _fs.Read(R("ports/1/addr_trsvcid")));
        Assert.Equal(R($"subsystems/{A}"), new FileInfo(R($"ports/1/subsystems/{A}")).LinkTarget);
        Assert.Equal(R($"subsystems/{B}"), new FileInfo(R($"ports/1/subsystems/{B}")).LinkTarget);

        Assert.Equal("1", _fs.Read(R($"subsystems/{A}/attr_allow_any_host")));
        Assert.Equal(_diskA, _fs.Read(R($"subsystems/{A}/namespaces/1/device_path")));
        Assert.Equal(UuidA1.ToString(), _fs.Read(R($"subsystems/{A}/namespaces/1/device_uuid")));
        Assert.Equal(UuidA1.ToString(), _fs.Read(R($"subsystems/{A}/namespaces/1/device_nguid")));
        Assert.Equal("1", _fs.Read(R($"subsystems/{A}/namespaces/1/enable")));

        Assert.Equal("0", _fs.Read(R($"subsystems/{B}/attr_allow_any_host")));
        Assert.Equal(_diskB, _fs.Read(R($"subsystems/{B}/namespaces/1/device_path"))); // relative: under the data directory
        Assert.True(_fs.DirectoryExists(R($"hosts/{Host1}")));
        Assert.Equal(R($"hosts/{Host1}"), new FileInfo(R($"subsystems/{B}/allowed_hosts/{Host1}")).LinkTarget);

        var owned = KernelOwnership.Load(Path.Combine(_fs.DataDirectory, KernelOwnership.FileName), _fs.Root);
        Assert.Equal([A, B], owned.Subsystems.Order(StringComparer.Ordinal));
        Assert.Equal([Host1], owned.Hosts);
        Assert.Equal("127.0.0.1:4420", Assert.Single(owned.Ports).Address);
    }

    [Fact]
    public void Apply_FollowsNvmetOrderingRules()
    {
        NewEngine().Apply(TwoSubsystems());
        var log = _fs.Log;
        int At(string entry) => log.IndexOf(entry) is >= 0 and var i ? i : throw new Xunit.Sdk.XunitException($"no '{entry}' in:\n{string.Join("\n", log)}");

        // Namespace: identity and path while disabled, enable last.
        string ns = $"subsystems/{A}/namespaces/1";
        Assert.True(At($"write {ns}/device_path={_diskA}") < At($"write {ns}/enable=1"));
        Assert.True(At($"write {ns}/device_uuid={UuidA1}") < At($"write {ns}/enable=1"));
        // Hosts exist before the subsystem links to them.
        Assert.True(At($"mkdir hosts/{Host1}") < At($"link subsystems/{B}/allowed_hosts/{Host1}"));
        // Port: every address attribute before the first link (which binds the socket), after the namespaces.
        int firstLink = log.FindIndex(e => e.StartsWith("link ports/1/subsystems/", StringComparison.Ordinal));
        foreach (string a in new[] { "addr_trtype=tcp", "addr_adrfam=ipv4", "addr_traddr=127.0.0.1", "addr_trsvcid=4420" })
            Assert.True(At($"write ports/1/{a}") < firstLink);
        Assert.True(At($"write subsystems/{B}/namespaces/1/enable=1") < firstLink);
    }

    [Fact]
    public void Apply_IsIdempotent_AndAdoptsWhatItOwnsAfterARestart()
    {
        NewEngine().Apply(TwoSubsystems());
        _fs.Log.Clear();

        var restarted = NewEngine(); // a new daemon process: ownership comes from the data directory
        restarted.Apply(TwoSubsystems());
        restarted.Apply(TwoSubsystems());

        Assert.Empty(_fs.Log);
    }

    [Fact]
    public void Apply_RemovesOnlyWhatItCreated()
    {
        const string foreign = "nqn.2026-11.io.example:made-by-nvmetcli";
        _fs.Foreign(f =>
        {
            f.MakeDirectory(R($"subsystems/{foreign}"));
            f.Write(R($"subsystems/{foreign}/attr_allow_any_host"), "1");
            f.MakeDirectory(R($"subsystems/{foreign}/namespaces/7"));
            f.Write(R($"subsystems/{foreign}/namespaces/7/device_path"), _diskA);
            f.Write(R($"subsystems/{foreign}/namespaces/7/enable"), "1");
            f.MakeDirectory(R("ports/1"));
            f.Write(R("ports/1/addr_trtype"), "tcp");
            f.Write(R("ports/1/addr_adrfam"), "ipv4");
            f.Write(R("ports/1/addr_traddr"), "10.0.0.1");
            f.Write(R("ports/1/addr_trsvcid"), "4420");
            f.Link(R($"subsystems/{foreign}"), R($"ports/1/subsystems/{foreign}"));
            f.MakeDirectory(R($"hosts/{Host2}"));
        });
        var engine = NewEngine();
        var state = TwoSubsystems();
        state.Subsystems[1].Hosts.Add(Host2); // an existing (foreign) host is linked, not owned
        engine.Apply(state);
        Assert.Equal("2", engine.Ownership.Ports.Single().Id.ToString()); // ports/1 was taken

        engine.Apply(new DesiredState());

        Assert.Equal([foreign], _fs.List(R("subsystems")));
        Assert.Equal(["1"], _fs.List(R("ports")));
        Assert.Equal([foreign], _fs.List(R("ports/1/subsystems")));
        Assert.Equal("1", _fs.Read(R($"subsystems/{foreign}/namespaces/7/enable")));
        Assert.Equal([Host2], _fs.List(R("hosts")));
        Assert.Empty(engine.Ownership.Subsystems);
        Assert.Empty(engine.Ownership.Ports);
        Assert.Empty(engine.Ownership.Hosts);
        // Namespaces disabled before rmdir, links before directories.
        var log = _fs.Log;
        Assert.True(log.IndexOf($"write subsystems/{A}/namespaces/1/enable=0") < log.IndexOf($"rmdir subsystems/{A}/namespaces/1"));
        Assert.True(log.IndexOf($"unlink ports/2/subsystems/{A}") < log.IndexOf($"rmdir subsystems/{A}"));
        Assert.True(log.IndexOf($"unlink subsystems/{B}/allowed_hosts/{Host1}") < log.IndexOf($"rmdir hosts/{Host1}"));
        Assert.DoesNotContain(log, e => e.Contains(foreign, StringComparison.Ordinal) || e.Contains(Host2, StringComparison.Ordinal) && e.StartsWith("rmdir", StringComparison.Ordinal));
    }

    [Fact]
    public void Apply_ReconcilesChanges_NamespacesHostsAndListeners()
    {
        var engine = NewEngine();
        engine.Apply(TwoSubsystems());

        var next = TwoSubsystems();
        next.Listeners = [new ListenerSpec { Address = "[::1]:4421" }];
        next.Subsystems[0].Namespaces.Add(new NamespaceSpec { Nsid = 2, Backend = $"file:{_diskB}:1M", Uuid = Guid.NewGuid() });
        next.Subsystems[1].AllowAnyHost = true; // hosts unlinked before allow_any_host=1 (nvmet refuses it otherwise)
        _fs.Log.Clear();
        engine.Apply(next);

        Assert.Equal(["1"], _fs.List(R("ports"))); // the old port went first, its number was free again
        Assert.Equal("ipv6", _fs.Read(R("ports/1/addr_adrfam")));
        Assert.Equal("::1", _fs.Read(R("ports/1/addr_traddr")));
        Assert.Equal("4421", _fs.Read(R("ports/1/addr_trsvcid")));
        Assert.Equal("1", _fs.Read(R($"subsystems/{A}/namespaces/2/enable")));
        Assert.Equal("1", _fs.Read(R($"subsystems/{B}/attr_allow_any_host")));
        Assert.Empty(_fs.List(R($"subsystems/{B}/allowed_hosts")));
        Assert.Empty(_fs.List(R("hosts")));
        Assert.True(_fs.Log.IndexOf($"unlink ports/1/subsystems/{A}") < _fs.Log.IndexOf("rmdir ports/1"));

        // Back to a host list: allow_any_host=0 before the link.
        next.Subsystems[1].AllowAnyHost = false;
        _fs.Log.Clear();
        engine.Apply(next);
        Assert.True(_fs.Log.IndexOf($"write subsystems/{B}/attr_allow_any_host=0") < _fs.Log.IndexOf($"link subsystems/{B}/allowed_hosts/{Host1}"));
    }

    [Theory]
    [InlineData("memory:64M", "memory")]
    [InlineData("null:1G", "null")]
    [InlineData("volume:pool/vol", "volume")]
    public void Apply_RefusesBackendsTheKernelCannotServe_BeforeChangingAnything(string backend, string kind)
    {
        var state = TwoSubsystems();
        state.Subsystems[1].Namespaces.Add(new NamespaceSpec { Nsid = 3, Backend = backend, Uuid = Guid.NewGuid() });

        var ex = Assert.Throws<ManagementException>(() => NewEngine().Apply(state));

        Assert.Contains($"namespace 3 of {B}", ex.Message);
        Assert.Contains($"{kind} backends", ex.Message);
        Assert.Contains("nvmet serves only block devices and files", ex.Message);
        Assert.Empty(_fs.Log);
    }

    [Fact]
    public void Apply_RefusesASubsystemItDidNotCreate()
    {
        _fs.Foreign(f => f.MakeDirectory(R($"subsystems/{A}")));
        var ex = Assert.Throws<ManagementException>(() => NewEngine().Apply(TwoSubsystems()));
        Assert.Contains($"{R($"subsystems/{A}")} exists and was not created by EdgeBlock", ex.Message);
        Assert.Empty(_fs.Log);
    }

    [Fact]
    public void Apply_RefusesWhenNvmetIsNotThere()
    {
        var missing = new KernelTarget(Path.Combine(_fs.Base, "no-such"), _fs.DataDirectory, NullLogger.Instance, _fs);
        var ex = Assert.Throws<ManagementException>(() => missing.Apply(TwoSubsystems()));
        Assert.Contains("modprobe nvmet nvmet-tcp; mount -t configfs none /sys/kernel/config", ex.Message);
    }

    [Fact]
    public void KernelRefusal_NamesThePathAndErrno_AndAChangeIsUndone()
    {
        var engine = NewEngine();
        engine.Apply(TwoSubsystems());

        // nvmet cannot open the device: the enable write fails with ENOENT.
        var ex = Assert.Throws<ManagementException>(() => Change(engine, s =>
            s.FindSubsystem(A)!.Namespaces.Add(new NamespaceSpec { Nsid = 2, Backend = "file:/dev/no-such-device", Uuid = Guid.NewGuid() })));

        Assert.Contains($"{R($"subsystems/{A}/namespaces/2/enable")}", ex.Message);
        Assert.Contains("No such file or directory (errno 2)", ex.Message);
        Assert.False(_fs.DirectoryExists(R($"subsystems/{A}/namespaces/2")));
        Assert.Single(engine.Applied.FindSubsystem(A)!.Namespaces);

        // A port that cannot bind: refused with EADDRINUSE, the listener is not kept.
        _fs.BusyAddresses.Add("127.0.0.1:4430");
        ex = Assert.Throws<ManagementException>(() => Change(engine, s => s.Listeners.Add(new ListenerSpec { Address = "127.0.0.1:4430" })));
        Assert.Contains("Address already in use (errno 98)", ex.Message);
        Assert.Single(engine.Applied.Listeners);
        Assert.Equal(["1"], _fs.List(R("ports")));
    }

    [Fact]
    public void Steps_RemoveANamespace_DisableThenRmdir()
    {
        var engine = NewEngine();
        engine.Apply(TwoSubsystems());
        _fs.Log.Clear();

        Change(engine, s => s.FindSubsystem(A)!.Namespaces.Clear());

        Assert.Equal([$"write subsystems/{A}/namespaces/1/enable=0", $"rmdir subsystems/{A}/namespaces/1"], _fs.Log);
        _fs.Log.Clear();
        Change(engine, s => s.FindSubsystem(A)!.Namespaces.Clear()); // nothing left to remove: nothing is touched
        Assert.Empty(_fs.Log);
    }

    [Fact]
    public void Tmpfs_File_GetsBufferedIo()
    {
        if (!Directory.Exists("/dev/shm")) return;
        string file = Path.Combine("/dev/shm", "edgeblock-kernel-" + Guid.NewGuid().ToString("N"));
        try
        {
            File.WriteAllBytes(file, new byte[4096]);
            var state = new DesiredState { Subsystems = [new SubsystemSpec { Nqn = A, AllowAnyHost = true, Namespaces = [new NamespaceSpec { Nsid = 1, Backend = $"file:{file}", Uuid = UuidA1 }] }] };
            NewEngine().Apply(state);
            // tmpfs took O_DIRECT only from Linux 6.6 on: either way the namespace is enabled.
            Assert.Equal("1", _fs.Read(R($"subsystems/{A}/namespaces/1/enable")));
            Assert.Equal(Configfs.SupportsDirectIo(file) ? "0" : "1", _fs.Read(R($"subsystems/{A}/namespaces/1/buffered_io")));
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task ManagementService_GoesThroughTheKernelEngine_AndARefusalChangesNothing()
    {
        var target = new NvmeTarget(NullLogger.Instance);
        var engine = NewEngine();
        var store = new ConfigStore(Path.Combine(_fs.DataDirectory, "edgeblock.json"));
        var service = new ManagementService(target, engine, store, _fs.DataDirectory, NullLogger.Instance);
        await service.StartAsync(new DesiredState(), persist: true);

        await service.CreateSubsystemAsync(new CreateSubsystemRequest(A, AllowAnyHost: true));
        await service.AddNamespaceAsync(A, new AddNamespaceRequest($"file:{_diskA}"));
        await service.AddListenerAsync(new AddListenerRequest("127.0.0.1:4420"));
        string saved = File.ReadAllText(store.Path);

        var ex = await Assert.ThrowsAsync<ManagementException>(() => service.AddNamespaceAsync(A, new AddNamespaceRequest("memory:64M")));
        Assert.Contains("cannot go to the kernel target", ex.Message);
        Assert.Equal(saved, File.ReadAllText(store.Path));
        Assert.Equal("1", _fs.Read(R($"subsystems/{A}/namespaces/1/enable")));
        Assert.Equal([A], _fs.List(R("ports/1/subsystems")));
        Assert.DoesNotContain(target.Subsystems, s => !s.IsDiscovery); // nothing served by our own target

        await service.RemoveNamespaceAsync(A, 1);
        Assert.Empty(_fs.List(R($"subsystems/{A}/namespaces")));
        await service.DeleteSubsystemAsync(A);
        Assert.Empty(_fs.List(R("subsystems")));
        Assert.Equal(["1"], _fs.List(R("ports")));
        Assert.Empty(_fs.List(R("ports/1/subsystems")));
    }
}
