using System.Runtime.CompilerServices;
using System.Text.Json;
using EdgeBlock.Daemon.Management;

namespace EdgeBlock.Daemon.Tests;

/// <summary>nvmetcli save JSON to a desired state and back, without a daemon.</summary>
public sealed class NvmetcliFormatTests : IDisposable
{
    private const string Vm1 = "nqn.2024-05.com.example.edge:vm1";
    private const string Shared = "nqn.2024-05.com.example.edge:shared";
    private const string Host1 = "nqn.2014-08.org.nvmexpress:uuid:4c4c4544-0042-3010-8057-b7c04f4d3532";
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "edgeblock-nvmetcli-" + Guid.NewGuid().ToString("N"));

    public NvmetcliFormatTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>The hand-written `nvmetcli save` fixture (shared with the end-to-end tests).</summary>
    private static string FixtureText([CallerFilePath] string here = "") =>
        File.ReadAllText(Path.Combine(Path.GetDirectoryName(here)!, "..", "EdgeBlock.Management.Tests", "Fixtures", "nvmetcli-save.json"));

    /// <summary>The fixture with its device paths pointing at files that exist here.</summary>
    private (JsonElement Root, string Disk, string Data, string SharedImg) Fixture()
    {
        string disk = Touch("nvme0n1"), data = Touch("vm1-data.img"), shared = Touch("shared.img");
        string text = FixtureText()
            .Replace("/dev/disk/by-id/nvme-SAMSUNG_MZQL2960HCJR-00A07_S64FNE0T812345", disk)
            .Replace("/srv/nvmet/vm1-data.img", data)
            .Replace("/srv/nvmet/shared.img", shared);
        return (JsonDocument.Parse(text).RootElement, disk, data, shared);
    }

    private string Touch(string name)
    {
        string path = Path.Combine(_dir, name);
        using (var f = File.Create(path)) f.SetLength(16 << 20);
        return path;
    }

    [Fact]
    public void Read_Fixture_MapsTcpPortsSubsystemsAndNamespaces()
    {
        var (root, disk, data, shared) = Fixture();

        var r = NvmetcliFormat.Read(root, _dir, strict: false);

        Assert.Empty(r.Errors);
        Assert.Equal(["192.168.122.33:4420", "[fd00::10]:4421"], r.State.Listeners.Select(l => l.Address));
        Assert.Equal(["ports[0].addr", "ports[1].addr"], r.ListenerFields);
        Assert.Equal([Vm1, Shared], r.State.Subsystems.Select(s => s.Nqn));

        var vm1 = r.State.Subsystems[0];
        Assert.False(vm1.AllowAnyHost);
        Assert.Equal([Host1], vm1.Hosts);
        Assert.Equal([1u, 2u], vm1.Namespaces.Select(n => n.Nsid));
        Assert.Equal($"file:{disk}", vm1.Namespaces[0].Backend);
        Assert.Equal(Guid.Parse("3f6c8d2e-7b1a-4c59-9e08-5d4a2b1c0f37"), vm1.Namespaces[0].Uuid);
        Assert.Equal($"file:{data}", vm1.Namespaces[1].Backend);
        Assert.Equal(Guid.Parse("a1b2c3d4-e5f6-4711-8899-aabbccddeeff"), vm1.Namespaces[1].Uuid);

        var sh = r.State.Subsystems[1];
        Assert.True(sh.AllowAnyHost);
        Assert.Empty(sh.Hosts);
        var ns = Assert.Single(sh.Namespaces); // nsid 7 is disabled in the kernel target: not imported
        Assert.Equal($"file:{shared}", ns.Backend);
        Assert.Equal("subsystems[1].namespaces[0].device.path", Assert.Single(r.BackendFields[1]));

        Assert.Contains(r.Warnings, w => w.StartsWith("ports[2]: trtype 'rdma'") && w.Contains("10.10.0.33"));
        Assert.Contains(r.Warnings, w => w.StartsWith("subsystems[1].namespaces[1]: namespace 7") && w.Contains("not enabled"));
        Assert.Contains(r.Warnings, w => w.StartsWith("subsystems[*].attr:") && w.Contains("serial") && w.Contains("model"));
        Assert.Contains(r.Warnings, w => w.Contains("ports[1] ([fd00::10]:4421) exposed only some subsystems"));
        Assert.Empty(ConfigValidator.Validate(r.State, _dir));
    }

    [Fact]
    public void Read_Fixture_Strict_RefusesWhatWouldBeSkipped()
    {
        var r = NvmetcliFormat.Read(Fixture().Root, _dir, strict: true);
        Assert.Contains(r.Errors, e => e.StartsWith("ports[2]: trtype 'rdma'") && e.Contains("--strict"));
        Assert.Contains(r.Errors, e => e.StartsWith("subsystems[1].namespaces[1]:"));
        Assert.Equal(2, r.Errors.Count);
    }

    [Fact]
    public void Read_NguidWithoutUuid_BecomesTheUuid_AndNoIdsGiveAStableOne()
    {
        string a = Touch("a.img"), b = Touch("b.img");
        string json = $$$"""
            {"subsystems": [{"nqn": "{{{Vm1}}}", "attr": {"allow_any_host": "1"}, "namespaces": [
              {"nsid": 1, "enable": 1, "device": {"path": "{{{a}}}", "nguid": "11111111-2222-4333-8444-555555555555", "uuid": "00000000-0000-0000-0000-000000000000"}},
              {"nsid": 2, "enable": 1, "device": {"path": "{{{b}}}"}}]}]}
            """;
        var first = NvmetcliFormat.Read(JsonDocument.Parse(json).RootElement, _dir, strict: false);
        var again = NvmetcliFormat.Read(JsonDocument.Parse(json).RootElement, _dir, strict: false);
        Assert.Empty(first.Errors);
        Assert.Equal(Guid.Parse("11111111-2222-4333-8444-555555555555"), first.State.Subsystems[0].Namespaces[0].Uuid);
        Assert.NotNull(first.State.Subsystems[0].Namespaces[1].Uuid);
        Assert.Equal(first.State.Subsystems[0].Namespaces[1].Uuid, again.State.Subsystems[0].Namespaces[1].Uuid);
    }

    public static TheoryData<string, string> Refusals() => new()
    {
        { """{"subsystems": [{"nqn": "SUBNQN", "namespaces": [{"nsid": 1, "enable": 1, "device": {"path": "/nonexistent-edgeblock/x"}}]}]}""",
          "subsystems[0].namespaces[0].device.path: /nonexistent-edgeblock/x does not exist" },
        { """{"subsystems": [{"nqn": "SUBNQN", "namespaces": [{"nsid": 1, "enable": 1, "device": {"path": "disk.img"}}]}]}""",
          "subsystems[0].namespaces[0].device.path: 'disk.img' is not an absolute path" },
        { """{"subsystems": [{"nqn": "SUBNQN", "namespaces": [{"nsid": 1, "enable": 1, "device": {"uuid": "x"}}]}]}""",
          "subsystems[0].namespaces[0].device.path: missing" },
        { """{"subsystems": [{"nqn": "SUBNQN", "namespaces": [{"nsid": 1, "enable": 1, "device": {"path": "FILE", "uuid": "not-a-uuid"}}]}]}""",
          "subsystems[0].namespaces[0].device.uuid: 'not-a-uuid' is not a UUID" },
        { """{"subsystems": [{"nqn": "SUBNQN", "namespaces": [{"nsid": 0, "enable": 1, "device": {"path": "FILE"}}]}]}""",
          "subsystems[0].namespaces[0].nsid: 0 is not a namespace ID" },
        { """{"subsystems": [{"nqn": "SUBNQN", "namespaces": [{"nsid": 2, "enable": 1, "device": {"path": "FILE"}}, {"nsid": 2, "enable": 1, "device": {"path": "/dev/null"}}]}]}""",
          "subsystems[0].namespaces[1].nsid: 2 is also subsystems[0].namespaces[0]" },
        { """{"subsystems": [{"nqn": "SUBNQN", "namespaces": [{"nsid": 1, "enable": 1, "device": {"path": "FILE"}}, {"nsid": 2, "enable": 1, "device": {"path": "FILE"}}]}]}""",
          "subsystems[0].namespaces[1].device.path: FILE also backs subsystems[0].namespaces[0]" },
        { """{"subsystems": [{"nqn": "SUBNQN", "attr": {"allow_any_host": "yes"}}]}""",
          "subsystems[0].attr.allow_any_host: \"yes\" is not \"0\" or \"1\"" },
        { """{"subsystems": [{"nqn": "SUBNQN"}, {"nqn": "testnqn"}]}""",
          "subsystems[1].nqn: 'testnqn' is not a valid NQN" },
        { """{"subsystems": [{"nqn": "SUBNQN"}, {"nqn": "SUBNQN"}]}""",
          "subsystems[1].nqn: 'SUBNQN' is also subsystems[0]" },
        { """{"hosts": [{"nqn": "hostname"}]}""",
          "hosts[0].nqn: 'hostname' is not a valid host NQN" },
        // Found by tests/fuzz (config): a host given as a string, as allowed_hosts lists them, threw (a 500).
        { """{"hosts": ["nqn.2014-08.org.nvmexpress:uuid:7d9e3c2a-5b1f-4c8e-9a6d-2f4b8c1e0a37"]}""",
          "hosts[0]: is the string" },
        { """{"subsystems": [{"nqn": "SUBNQN", "allowed_hosts": ["h"]}]}""",
          "subsystems[0].allowed_hosts[0]: 'h' is not a valid host NQN" },
        { """{"ports": [{"portid": 1, "addr": {"trtype": "tcp", "adrfam": "ipv4", "traddr": "nowhere", "trsvcid": "4420"}}]}""",
          "ports[0].addr.traddr: 'nowhere' is not an IP address" },
        { """{"ports": [{"portid": 1, "addr": {"trtype": "tcp", "adrfam": "ipv6", "traddr": "10.0.0.1", "trsvcid": "4420"}}]}""",
          "ports[0].addr.traddr: '10.0.0.1' is not an ipv6 address" },
        { """{"ports": [{"portid": 1, "addr": {"trtype": "tcp", "adrfam": "ipv4", "traddr": "10.0.0.1", "trsvcid": "99999"}}]}""",
          "ports[0].addr.trsvcid: '99999' is not a TCP port" },
        { """{"ports": [{"portid": 1, "addr": {"trtype": "tcp", "adrfam": "ipv4", "traddr": "10.0.0.1"}}]}""",
          "ports[0].addr.trsvcid: missing" },
        { """{"ports": [{"portid": 1, "addr": {"trtype": "tcp", "adrfam": "ipv4", "traddr": "10.0.0.1", "trsvcid": "4420", "tsas": "tls1.3"}}]}""",
          "ports[0].addr.tsas: 'tls1.3'" },
        { """{"ports": [{"portid": 1, "addr": {"trtype": "usb", "traddr": "10.0.0.1", "trsvcid": "4420"}}]}""",
          "ports[0].addr.trtype: 'usb' is not an NVMe-oF transport" },
        { """{"ports": [{"portid": 1, "addr": {"trtype": "tcp", "adrfam": "ipv4", "traddr": "10.0.0.1", "trsvcid": "4420"}, "subsystems": ["nqn.2024-05.com.example.edge:nosuch"]}]}""",
          "ports[0].subsystems[0]: \"nqn.2024-05.com.example.edge:nosuch\" is not one of the file's subsystems" },
        { """{"ports": [{"addr": {"trtype": "tcp", "traddr": "10.0.0.1", "trsvcid": "4420"}}, {"addr": {"trtype": "tcp", "traddr": "10.0.0.1", "trsvcid": "4420"}}]}""",
          "ports[1].addr: 10.0.0.1:4420 is also ports[0]'s address" },
        { """{"ports": {}}""", "ports: is an object, not an array" },
        { """[]""", "(document): is an array" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public void Read_Refuses_NamingTheField(string json, string expected)
    {
        string file = Touch("f.img");
        json = json.Replace("SUBNQN", Vm1).Replace("FILE", file);
        expected = expected.Replace("SUBNQN", Vm1).Replace("FILE", file);
        var r = NvmetcliFormat.Read(JsonDocument.Parse(json).RootElement, _dir, strict: false);
        Assert.True(r.Errors.Any(e => e.StartsWith(expected, StringComparison.Ordinal)), $"expected '{expected}' in:\n{string.Join("\n", r.Errors)}");
    }

    [Fact]
    public void Write_ExpressesListenersHostsAndFiles_LeavesOutMemory()
    {
        string disk = Touch("vm1.img");
        var uuid = Guid.NewGuid();
        var state = new DesiredState
        {
            Listeners = [new ListenerSpec { Address = "0.0.0.0:4420" }, new ListenerSpec { Address = "[::1]:4421" }],
            Subsystems =
            [
                new SubsystemSpec
                {
                    Nqn = Vm1, Hosts = ["nqn.2014-08.org.nvmexpress:uuid:b", "nqn.2014-08.org.nvmexpress:uuid:a"],
                    Namespaces =
                    [
                        new NamespaceSpec { Nsid = 2, Backend = "file:vm1.img:16M", Uuid = uuid },
                        new NamespaceSpec { Nsid = 1, Backend = "memory:16M", Uuid = Guid.NewGuid() },
                    ],
                },
                new SubsystemSpec { Nqn = Shared, AllowAnyHost = true, Hosts = ["nqn.2014-08.org.nvmexpress:uuid:a"] },
            ],
        };
        var warnings = new List<string>();
        var errors = new List<string>();

        var doc = JsonDocument.Parse(NvmetcliFormat.Write(state, _dir, strict: false, warnings, errors).ToJsonString()).RootElement;

        Assert.Empty(errors);
        Assert.Contains("namespace 1 of " + Vm1 + ": backend 'memory:16M'", Assert.Single(warnings));
        Assert.Equal(["hosts", "ports", "subsystems"], doc.EnumerateObject().Select(p => p.Name));
        Assert.Equal(["nqn.2014-08.org.nvmexpress:uuid:a", "nqn.2014-08.org.nvmexpress:uuid:b"],
            doc.GetProperty("hosts").EnumerateArray().Select(h => h.GetProperty("nqn").GetString()));
        var ports = doc.GetProperty("ports").EnumerateArray().ToList();
        Assert.Equal(2, ports.Count);
        Assert.Equal(1, ports[0].GetProperty("portid").GetInt32());
        Assert.Equal("ipv4", ports[0].GetProperty("addr").GetProperty("adrfam").GetString());
        Assert.Equal("0.0.0.0", ports[0].GetProperty("addr").GetProperty("traddr").GetString());
        Assert.Equal("4420", ports[0].GetProperty("addr").GetProperty("trsvcid").GetString());
        Assert.Equal("tcp", ports[0].GetProperty("addr").GetProperty("trtype").GetString());
        Assert.Equal("ipv6", ports[1].GetProperty("addr").GetProperty("adrfam").GetString());
        Assert.Equal("::1", ports[1].GetProperty("addr").GetProperty("traddr").GetString());
        Assert.Equal([Vm1, Shared], ports[1].GetProperty("subsystems").EnumerateArray().Select(s => s.GetString()));
        var vm1 = doc.GetProperty("subsystems")[0];
        Assert.Equal(Vm1, vm1.GetProperty("nqn").GetString());
        Assert.Equal("0", vm1.GetProperty("attr").GetProperty("allow_any_host").GetString());
        Assert.Equal(20, vm1.GetProperty("attr").GetProperty("serial").GetString()!.Length);
        var ns = Assert.Single(vm1.GetProperty("namespaces").EnumerateArray());
        Assert.Equal(2, ns.GetProperty("nsid").GetInt32());
        Assert.Equal(1, ns.GetProperty("enable").GetInt32());
        Assert.Equal(disk, ns.GetProperty("device").GetProperty("path").GetString());
        Assert.Equal(uuid.ToString(), ns.GetProperty("device").GetProperty("uuid").GetString());
        Assert.Equal("1", doc.GetProperty("subsystems")[1].GetProperty("attr").GetProperty("allow_any_host").GetString());

        warnings.Clear();
        NvmetcliFormat.Write(state, _dir, strict: true, warnings, errors);
        Assert.Contains("memory:16M", Assert.Single(errors));
    }

    [Fact]
    public void WriteThenRead_GivesTheSameState()
    {
        string a = Touch("a.img"), b = Touch("b.img");
        var state = new DesiredState
        {
            Listeners = [new ListenerSpec { Address = "127.0.0.1:4420" }, new ListenerSpec { Address = "[::1]:4430" }],
            Subsystems =
            [
                new SubsystemSpec
                {
                    Nqn = Vm1, Hosts = [Host1],
                    Namespaces = [new NamespaceSpec { Nsid = 1, Backend = $"file:{a}", Uuid = Guid.NewGuid() }, new NamespaceSpec { Nsid = 9, Backend = $"file:{b}", Uuid = Guid.NewGuid() }],
                },
                new SubsystemSpec { Nqn = Shared, AllowAnyHost = true },
            ],
        };
        var warnings = new List<string>();
        var errors = new List<string>();
        var doc = JsonDocument.Parse(NvmetcliFormat.Write(state, _dir, strict: true, warnings, errors).ToJsonString()).RootElement;
        Assert.Empty(errors);
        Assert.Empty(warnings);

        var back = NvmetcliFormat.Read(doc, _dir, strict: true);

        Assert.Empty(back.Errors);
        Assert.Empty(back.Warnings);
        Assert.Equal(JsonSerializer.Serialize(state, ConfigJson.Options), JsonSerializer.Serialize(back.State, ConfigJson.Options));
    }

    [Theory]
    [InlineData("""{"version": 1, "listeners": [], "subsystems": []}""", "edgeblock")]
    [InlineData("""{"subsystems": [{"nqn": "x", "allow_any_host": true}]}""", "edgeblock")]
    [InlineData("""{"hosts": [], "ports": [], "subsystems": []}""", "nvmetcli")]
    [InlineData("""{"subsystems": [{"nqn": "x", "attr": {"allow_any_host": "1"}}]}""", "nvmetcli")]
    public void Detect_TellsTheFormatsApart(string json, string format) =>
        Assert.Equal(format, EdgeBlockFormat.Detect(JsonDocument.Parse(json).RootElement));
}
