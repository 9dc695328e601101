using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using EdgeBlock.Cli;
using EdgeBlock.Daemon;
using EdgeBlock.Daemon.Management;
using EdgeBlock.Initiator;
using EdgeBlock.Nvme;

namespace EdgeBlock.Management.Tests;

/// <summary>The real `edgeblock serve` process reloads its hand-edited config file on SIGHUP, or refuses it and runs on.</summary>
public sealed class ReloadProcessTests : IDisposable
{
    private const string Vm5 = "nqn.2026-11.io.edgeblock:vm5";
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "ebh-" + Guid.NewGuid().ToString("N")[..12]);
    private readonly ConcurrentQueue<string> _log = new();

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private string Socket => Path.Combine(_dir, "api.sock");
    private string ConfigPath => Path.Combine(_dir, DaemonOptions.ConfigFileName);

    private Task<Process> ServeAsync(string? shellSetup = null) => ServeProcess.StartAsync(_dir, _log, shellSetup);

    private static Task SignalAsync(Process process, string signal) => ServeProcess.SignalAsync(process, signal);

    private async Task<string> LogLineAsync(string contains)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(15))
        {
            if (_log.FirstOrDefault(l => l.Contains(contains, StringComparison.Ordinal)) is { } line) return line;
            await Task.Delay(50);
        }
        throw new Xunit.Sdk.XunitException($"no log line with '{contains}' in:\n{string.Join('\n', _log)}");
    }

    private async Task<JsonElement> SubsystemsAsync()
    {
        var r = await TestDaemon.RunCliAsync("subsystem", "list", "--json", "--api-socket", Socket);
        Assert.True(r.ExitCode == 0, r.ToString());
        return JsonDocument.Parse(r.Output).RootElement;
    }

    [Fact]
    public async Task Serve_StartedWithHupIntAndTermIgnored_StillReloadsOnSighup_AndStopsOnSigintWithAHostConnected()
    {
        const ulong hupIntTerm = 1UL << (1 - 1) | 1UL << (2 - 1) | 1UL << (15 - 1);
        using var serve = await ServeAsync(shellSetup: "trap '' HUP INT TERM");
        try
        {
            Assert.Equal(0UL, ServeProcess.IgnoredSignalMask(serve) & hupIntTerm);

            await SignalAsync(serve, "HUP");
            Assert.Contains("nothing to change", await LogLineAsync("reloaded"));

            // A connected host with a parked AER and a keep-alive timer must not hold the stop up.
            var listeners = JsonDocument.Parse((await TestDaemon.RunCliAsync("listener", "list", "--json", "--api-socket", Socket)).Output).RootElement;
            var bound = System.Net.IPEndPoint.Parse(listeners[0].GetProperty("bound_address").GetString()!);
            var connected = await NvmeHost.ConnectAsync(bound.Address.ToString(), bound.Port, DaemonOptions.DefaultSubsystemNqn,
                NvmeHost.HostNqnFromId(Guid.NewGuid()), ioQueues: 1);
            await using var host = connected.Controller ?? throw new Xunit.Sdk.XunitException($"connect failed: {connected.FailedStep} {connected.Status}");
            var aer = host.AsyncEventRequestAsync().AsTask();

            var stopping = Stopwatch.StartNew();
            await SignalAsync(serve, "INT");
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            await serve.WaitForExitAsync(timeout.Token);
            Assert.Equal(0, serve.ExitCode);
            Assert.True(stopping.Elapsed < TimeSpan.FromSeconds(15), $"stop took {stopping.Elapsed}");
            Assert.Contains("shutting down", await LogLineAsync("shutting down"));
            // The host learns the controller is gone: its parked AER ends instead of waiting forever.
            await Task.WhenAny(aer, Task.Delay(TimeSpan.FromSeconds(10)));
            Assert.True(aer.IsCompleted, "the parked AER was left waiting after the daemon stopped");
        }
        finally
        {
            if (!serve.HasExited) serve.Kill();
        }
    }

    [Fact]
    public async Task Sighup_ReloadsTheEditedConfig_AndRefusesAnInvalidOneWhileRunningOn()
    {
        using var serve = await ServeAsync();
        try
        {
            var state = JsonSerializer.Deserialize<DesiredState>(await File.ReadAllTextAsync(ConfigPath), ConfigJson.Options)!;
            state.Subsystems.Add(new SubsystemSpec { Nqn = Vm5, AllowAnyHost = true, Namespaces = [new NamespaceSpec { Nsid = 1, Backend = "null:1G" }] });
            string edited = JsonSerializer.Serialize(state, ConfigJson.Options);
            await File.WriteAllTextAsync(ConfigPath, edited);

            await SignalAsync(serve, "HUP");
            Assert.Contains($"+ subsystem {Vm5}", await LogLineAsync("reloaded"));
            var subsystems = await SubsystemsAsync();
            var vm5 = Assert.Single(subsystems.EnumerateArray(), s => s.GetProperty("nqn").GetString() == Vm5);
            Assert.Equal(1L << 30, Assert.Single(vm5.GetProperty("namespaces").EnumerateArray()).GetProperty("size_bytes").GetInt64());

            // Invalid: a bad listener address. Refused with field, value and reason; nothing changes; still serving.
            string invalid = (await File.ReadAllTextAsync(ConfigPath)).Replace("\"null:1G\"", "\"null:1G\"").Replace("127.0.0.1:0", "127.0.0.1");
            await File.WriteAllTextAsync(ConfigPath, invalid);
            await SignalAsync(serve, "HUP");
            string refusal = await LogLineAsync("refused, running state kept");
            Assert.Contains("listeners[0].address", refusal);
            Assert.Contains("'127.0.0.1'", refusal);
            Assert.Contains("ADDRESS:PORT", refusal);
            Assert.False(serve.HasExited);
            Assert.Equal(2, (await SubsystemsAsync()).GetArrayLength());
            Assert.Equal(invalid, await File.ReadAllTextAsync(ConfigPath));
        }
        finally
        {
            await SignalAsync(serve, "TERM");
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            await serve.WaitForExitAsync(timeout.Token);
        }
        Assert.Equal(0, serve.ExitCode);
    }
}
