using EdgeBlock.Daemon.Management;

namespace EdgeBlock.Daemon.Tests;

public sealed class DesiredStateTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "edgeblock-state-" + Guid.NewGuid().ToString("N"));

    public DesiredStateTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("null", BackendKind.Null, null, null)]
    [InlineData("null:2G", BackendKind.Null, null, 2L << 30)]
    [InlineData("memory:64M", BackendKind.Memory, null, 64L << 20)]
    [InlineData("file:disk.img", BackendKind.File, "disk.img", null)]
    [InlineData("file:/var/lib/x/disk.img:8G", BackendKind.File, "/var/lib/x/disk.img", 8L << 30)]
    [InlineData("file:/dev/disk/by-id/nvme-eui.00:11", BackendKind.File, "/dev/disk/by-id/nvme-eui.00:11", null)]
    public void BackendSpec_Parses(string text, BackendKind kind, string? path, long? size)
    {
        Assert.True(BackendSpec.TryParse(text, out var spec, out string error), error);
        Assert.Equal(new BackendSpec(kind, path, size), spec);
        Assert.True(BackendSpec.TryParse(spec.ToString(), out var again, out _));
        Assert.Equal(spec, again);
    }

    [Theory]
    [InlineData("", "not a backend")]
    [InlineData("tape:1G", "not a backend")]
    [InlineData("memory", "needs a size")]
    [InlineData("memory:12Q", "not a size")]
    [InlineData("memory:1000", "at least 1M")]
    [InlineData("file:", "needs a path")]
    public void BackendSpec_Refuses(string text, string why)
    {
        Assert.False(BackendSpec.TryParse(text, out _, out string error));
        Assert.Contains(why, error);
    }

    private static DesiredState Valid() => new()
    {
        Listeners = [new ListenerSpec { Address = "127.0.0.1:4420" }],
        Subsystems =
        [
            new SubsystemSpec
            {
                Nqn = "nqn.2026-11.io.edgeblock:a",
                Hosts = ["nqn.2014-08.org.nvmexpress:uuid:1"],
                Namespaces = [new NamespaceSpec { Nsid = 1, Backend = "memory:16M", Uuid = Guid.NewGuid() }],
            },
        ],
    };

    [Fact]
    public void Validate_AcceptsAValidState() => Assert.Empty(ConfigValidator.Validate(Valid(), _dir));

    [Fact]
    public void Validate_SameNamespaceUuidInTwoSubsystems_IsRefusedNamingTheSecond()
    {
        var state = Valid();
        Guid shared = state.Subsystems[0].Namespaces[0].Uuid!.Value;
        state.Subsystems.Add(new SubsystemSpec
        {
            Nqn = "nqn.2026-11.io.edgeblock:other",
            Namespaces = [new NamespaceSpec { Nsid = 1, Backend = "memory:16M", Uuid = shared }],
        });

        var errors = ConfigValidator.Validate(state, _dir);

        var error = Assert.Single(errors);
        Assert.StartsWith($"subsystems[1].namespaces[0].uuid: '{shared}' is empty or already used", error);
    }

    [Fact]
    public void Validate_NamesFieldValueAndWhy()
    {
        var state = Valid();
        state.Listeners.Add(new ListenerSpec { Address = "127.0.0.1:4420" });
        state.Listeners.Add(new ListenerSpec { Address = "somewhere" });
        state.Subsystems.Add(new SubsystemSpec { Nqn = "nqn.2026-11.io.edgeblock:a" });
        state.Subsystems.Add(new SubsystemSpec { Nqn = "iqn.2026-11.io.edgeblock:b" });
        state.Subsystems[0].Hosts.Add("bad host");
        state.Subsystems[0].Namespaces.Add(new NamespaceSpec { Nsid = 1, Backend = $"file:{_dir}/missing/x.img:1G" });
        state.Subsystems[0].Namespaces.Add(new NamespaceSpec { Nsid = 0, Backend = "memory:16M" });

        var errors = ConfigValidator.Validate(state, _dir);

        Assert.Contains(errors, e => e.StartsWith("listeners[1].address: '127.0.0.1:4420' is listed twice"));
        Assert.Contains(errors, e => e.StartsWith("listeners[2].address: 'somewhere' is not ADDRESS:PORT"));
        Assert.Contains(errors, e => e.StartsWith("subsystems[1].nqn: 'nqn.2026-11.io.edgeblock:a' is listed twice"));
        Assert.Contains(errors, e => e.StartsWith("subsystems[2].nqn: 'iqn.2026-11.io.edgeblock:b' is not a valid NQN"));
        Assert.Contains(errors, e => e.StartsWith("subsystems[0].hosts[1]: 'bad host' is not a valid host NQN"));
        Assert.Contains(errors, e => e.StartsWith("subsystems[0].namespaces[1].nsid: 1 is listed twice"));
        Assert.Contains(errors, e => e.StartsWith("subsystems[0].namespaces[1].backend:") && e.Contains("does not exist"));
        Assert.Contains(errors, e => e.StartsWith("subsystems[0].namespaces[2].nsid: 0 is out of range"));
    }

    [Fact]
    public void ConfigStore_RoundTripsAndReplacesAtomically()
    {
        var store = new ConfigStore(Path.Combine(_dir, "edgeblock.json"));
        var state = Valid();
        store.Save(state);
        state.Subsystems[0].AllowAnyHost = true;
        store.Save(state);
        var back = store.Load();
        Assert.True(back.Subsystems[0].AllowAnyHost);
        Assert.Equal(state.Subsystems[0].Namespaces[0].Uuid, back.Subsystems[0].Namespaces[0].Uuid);
        Assert.Equal(["edgeblock.json"], Directory.GetFiles(_dir).Select(Path.GetFileName));
        Assert.Contains("\"allow_any_host\": true", File.ReadAllText(store.Path));
    }

    [Fact]
    public void ConfigStore_UnknownField_IsRefusedNamingIt()
    {
        string path = Path.Combine(_dir, "edgeblock.json");
        File.WriteAllText(path, """{ "version": 1, "listeners": [ { "adress": "127.0.0.1:4420" } ] }""");
        var ex = Assert.Throws<ManagementException>(() => new ConfigStore(path).Load());
        Assert.Contains("adress", ex.Message);
        Assert.Contains(path, ex.Message);
    }
}
