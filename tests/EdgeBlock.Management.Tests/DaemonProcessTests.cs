using System.Diagnostics;
using System.Text.Json;
using EdgeBlock.Cli;
using EdgeBlock.Daemon;

namespace EdgeBlock.Management.Tests;

/// <summary>The real `edgeblock serve` process, driven by the CLI: configure, stop with SIGTERM, start again.</summary>
public sealed class DaemonProcessTests : IDisposable
{
    private const string Vm3 = "nqn.2026-11.io.edgeblock:vm3";
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "ebp-" + Guid.NewGuid().ToString("N")[..12]);

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private string Socket => Path.Combine(_dir, "api.sock");

    private Task<Process> ServeAsync() => ServeProcess.StartAsync(_dir);

    private static async Task StopAsync(Process process)
    {
        await ServeProcess.SignalAsync(process, "TERM");
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await process.WaitForExitAsync(timeout.Token);
        Assert.Equal(0, process.ExitCode);
    }

    [Fact]
    public async Task Serve_ConfiguredByCli_StopsGracefully_AndComesBackWithItsConfig()
    {
        using var first = await ServeAsync();
        string uuid;
        try
        {
            Assert.Equal(0, (await TestDaemon.RunCliAsync("subsystem", "create", Vm3, "--allow-any-host", "--api-socket", Socket)).ExitCode);
            var added = await TestDaemon.RunCliAsync("namespace", "add", Vm3, "--backend", "file:vm3.img:16M", "--api-socket", Socket);
            Assert.True(added.ExitCode == 0, added.ToString());
            using var api = new ApiClient(Socket);
            var openapi = await api.SendAsync(HttpMethod.Get, "openapi/v1.json");
            Assert.Contains("/v1/subsystems/{nqn}/namespaces", openapi);
            uuid = JsonDocument.Parse((await TestDaemon.RunCliAsync("namespace", "list", Vm3, "--json", "--api-socket", Socket)).Output)
                .RootElement[0].GetProperty("uuid").GetString()!;
        }
        finally
        {
            await StopAsync(first);
        }
        Assert.False(File.Exists(Socket));
        Assert.Equal(3, (await TestDaemon.RunCliAsync("status", "--api-socket", Socket)).ExitCode);

        using var second = await ServeAsync();
        try
        {
            var list = JsonDocument.Parse((await TestDaemon.RunCliAsync("namespace", "list", Vm3, "--json", "--api-socket", Socket)).Output).RootElement;
            Assert.Equal(uuid, list[0].GetProperty("uuid").GetString());
            var status = JsonDocument.Parse((await TestDaemon.RunCliAsync("status", "--json", "--api-socket", Socket)).Output).RootElement;
            Assert.Equal(2, status.GetProperty("subsystems").GetInt32());
            Assert.Equal(Path.Combine(_dir, DaemonOptions.ConfigFileName), status.GetProperty("config_path").GetString());
        }
        finally
        {
            await StopAsync(second);
        }
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task Serve_UnderUmask000_CreatesItsFilesPrivate_AndClosesAnOpenDataDirectory()
    {
        const UnixFileMode dir0755 = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
            | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;
        Directory.CreateDirectory(_dir, dir0755);
        var log = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var serve = await ServeProcess.StartAsync(_dir, log, shellSetup: "umask 000");
        try
        {
            var added = await TestDaemon.RunCliAsync("namespace", "add", DaemonOptions.DefaultSubsystemNqn, "--backend", "file:vm.img:1M", "--api-socket", Socket);
            Assert.True(added.ExitCode == 0, added.ToString());
            var pool = await TestDaemon.RunCliAsync("pool", "create", "p1", Path.Combine(_dir, "drive0.img") + ":64M", "--api-socket", Socket);
            Assert.True(pool.ExitCode == 0, pool.ToString());

            Assert.Equal("700", Mode(_dir));
            Assert.Equal("600", Mode(Path.Combine(_dir, DaemonOptions.ConfigFileName)));
            Assert.Equal("600", Mode(Path.Combine(_dir, "vm.img")));
            Assert.Equal("600", Mode(Path.Combine(_dir, "drive0.img")));
            Assert.Contains(log, l => l.Contains("was mode 0755, now 0700", StringComparison.Ordinal));
        }
        finally
        {
            await StopAsync(serve);
        }
    }

    /// <summary>Permission bits in octal, as ls shows them (no special bits).</summary>
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    private static string Mode(string path) => Convert.ToString((int)File.GetUnixFileMode(path) & 0x1FF, 8);
}
