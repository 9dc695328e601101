using System.Text.Json;
using EdgeBlock.Initiator;
using EdgeBlock.Nvme.Auth;

namespace EdgeBlock.Management.Tests;

/// <summary>Host DH-HMAC-CHAP secrets through the CLI: read from a file, kept out of the API's answers, enforced live.</summary>
public sealed class DhchapManagementTests
{
    private const string Vm = "nqn.2026-11.io.edgeblock:chap";

    [Fact]
    public async Task AddHostWithSecretFile_HostMustAuthenticate_AndTheApiNeverShowsTheSecret()
    {
        await using var d = await TestDaemon.StartAsync();
        string hostNqn = NvmeHost.HostNqnFromId(Guid.NewGuid());
        var key = DhchapKey.Generate(DhchapHash.Sha256);
        string secretFile = Path.Combine(d.Directory, "host.key");
        File.WriteAllText(secretFile, key.Format() + "\n");
        Assert.Equal(0, (await d.CliAsync("subsystem", "create", Vm)).ExitCode);
        Assert.Equal(0, (await d.CliAsync("namespace", "add", Vm, "--backend", "memory:16M")).ExitCode);

        var added = await d.CliAsync("subsystem", "add-host", Vm, hostNqn, "--dhchap-secret-file", secretFile, "--dhchap-dhgroup", "ffdhe2048");
        Assert.True(added.ExitCode == 0, added.ToString());

        var shown = await d.CliAsync("subsystem", "show", Vm, "--json");
        var auth = Assert.Single(JsonDocument.Parse(shown.Output).RootElement.GetProperty("host_auth").EnumerateArray());
        Assert.True(auth.GetProperty("has_secret").GetBoolean());
        Assert.False(auth.GetProperty("has_ctrl_secret").GetBoolean());
        Assert.Equal("ffdhe2048", auth.GetProperty("dhgroup").GetString());
        string secretPart = key.Format().Split(':')[2];
        Assert.DoesNotContain(secretPart, shown.Output);
        var exported = await d.CliAsync("config", "export");
        Assert.DoesNotContain(secretPart, exported.Output);

        var ep = d.NvmeEndPoint;
        var without = await NvmeHost.ConnectAsync(ep.Address.ToString(), ep.Port, Vm, hostNqn, ioQueues: 1);
        Assert.False(without.IsSuccess);
        var with = await NvmeHost.ConnectAsync(ep.Address.ToString(), ep.Port, Vm, hostNqn, ioQueues: 1, options: new NvmeConnectOptions { DhchapSecret = key });
        await using var host = with.Controller ?? throw new Xunit.Sdk.XunitException($"connect failed: {with.FailedStep}");
        Assert.True((await host.WriteAsync(1, 0, 1, new byte[512])).IsSuccess);
    }

    [Fact]
    public void AddHostRequest_ToString_HidesTheSecrets()
    {
        var request = new EdgeBlock.Api.AddHostRequest("nqn.2014-08.org.nvmexpress:uuid:x",
            new EdgeBlock.Api.SetHostAuthRequest("DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:", "DHHC-1:00:ctrl:"));
        Assert.DoesNotContain("DHHC", request.ToString());
    }

    [Fact]
    public async Task SetHostSecret_BadCrc_IsRefusedNamingTheProblem()
    {
        await using var d = await TestDaemon.StartAsync();
        string hostNqn = NvmeHost.HostNqnFromId(Guid.NewGuid());
        Assert.Equal(0, (await d.CliAsync("subsystem", "create", Vm)).ExitCode);
        Assert.Equal(0, (await d.CliAsync("subsystem", "add-host", Vm, hostNqn)).ExitCode);
        string secretFile = Path.Combine(d.Directory, "bad.key");
        File.WriteAllText(secretFile, "DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaS:");

        var refused = await d.CliAsync("subsystem", "set-host-secret", Vm, hostNqn, "--dhchap-secret-file", secretFile);

        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("CRC does not match", refused.Error);
        Assert.DoesNotContain("AAECAw", refused.Error);
    }
}
