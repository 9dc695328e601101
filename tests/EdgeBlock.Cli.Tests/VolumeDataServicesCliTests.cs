using System.CommandLine;
using System.Net;
using System.Text.Json;
using EdgeBlock.Daemon;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Cli.Tests;

/// <summary>
/// `volume create --compress --checksum` and what `volume show|list` and `pool show` print of it, through the real
/// CLI against a real daemon (in-process, its API on a Unix socket in a temp directory) with a pool p1 over one file.
/// </summary>
public sealed class VolumeDataServicesCliTests : IAsyncLifetime
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "ebcli-" + Guid.NewGuid().ToString("N")[..12]);
    private RunningDaemon? _daemon;

    private string Socket => Path.Combine(_directory, "api.sock");

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_directory);
        _daemon = await DaemonHost.StartAsync(new DaemonOptions
        {
            DataDirectory = _directory,
            Listen = new IPEndPoint(IPAddress.Loopback, 0),
            DefaultSizeBytes = 1 << 20,
            DefaultBackend = BackendKind.Memory,
            ApiSocketPath = Socket,
        }, configureLogging: l => l.SetMinimumLevel(LogLevel.Warning));
        Ok(await Cli("pool", "create", "p1", Path.Combine(_directory, "d0.img") + ":64M"));
    }

    public async Task DisposeAsync()
    {
        if (_daemon != null) await _daemon.DisposeAsync();
        try { Directory.Delete(_directory, recursive: true); } catch (IOException) { }
    }

    private sealed record Result(int ExitCode, string Output, string Error)
    {
        public override string ToString() => $"exit {ExitCode}\nstdout:\n{Output}\nstderr:\n{Error}";
    }

    /// <summary>`edgeblock ARGS --api-socket SOCKET` with the pool commands registered (as Program.cs does).</summary>
    private async Task<Result> Cli(params string[] args)
    {
        var root = ManagementCommands.CreateRoot();
        PoolCommands.AddTo(root);
        var output = new StringWriter();
        var error = new StringWriter();
        int code = await root.Parse([.. args, "--api-socket", Socket]).InvokeAsync(new InvocationConfiguration { Output = output, Error = error });
        return new Result(code, output.ToString(), error.ToString());
    }

    private static void Ok(Result r) => Assert.True(r.ExitCode == 0, r.ToString());

    private async Task<JsonElement> Json(params string[] args)
    {
        var r = await Cli([.. args, "--json"]);
        Ok(r);
        return JsonDocument.Parse(r.Output).RootElement;
    }

    [Fact]
    public async Task VolumeCreate_CompressLz4ChecksumOn_ShowAndListAnswerThem()
    {
        var created = await Cli("volume", "create", "p1/a", "--size", "16M", "--compress", "lz4", "--checksum", "on");

        Ok(created);
        Assert.Contains("compression lz4, checksum on", created.Output);
        JsonElement shown = await Json("volume", "show", "p1/a");
        Assert.Equal("lz4", shown.GetProperty("compression").GetString());
        Assert.True(shown.GetProperty("checksum").GetBoolean());
        Assert.Equal(0, shown.GetProperty("checksum_errors").GetInt64());
        JsonElement listed = Assert.Single((await Json("volume", "list")).EnumerateArray());
        Assert.Equal("lz4", listed.GetProperty("compression").GetString());
        Assert.True(listed.GetProperty("checksum").GetBoolean());
        Assert.Equal(0, listed.GetProperty("logical_bytes").GetInt64());
        Assert.Equal(0, listed.GetProperty("physical_bytes").GetInt64());
        Assert.Equal(1.0, listed.GetProperty("compression_ratio").GetDouble());
    }

    [Fact]
    public async Task VolumeCreate_NoDataServiceFlags_AreOffAndOff()
    {
        Ok(await Cli("volume", "create", "p1/a", "--size", "16M"));

        JsonElement shown = await Json("volume", "show", "p1/a");
        Assert.Equal("off", shown.GetProperty("compression").GetString());
        Assert.False(shown.GetProperty("checksum").GetBoolean());
    }

    [Fact]
    public async Task VolumeShowAndList_Tables_PrintCompressionChecksumAndSpace()
    {
        Ok(await Cli("volume", "create", "p1/a", "--size", "16M", "--compress", "zstd:9", "--checksum", "on"));

        var show = await Cli("volume", "show", "p1/a");
        Ok(show);
        Assert.Matches(@"(?m)^compression\s+zstd:9$", show.Output);
        Assert.Matches(@"(?m)^checksum\s+on$", show.Output);
        Assert.Matches(@"(?m)^checksum errors\s+0 ", show.Output);
        Assert.Matches(@"(?m)^logical\s+0 B ", show.Output);
        Assert.Matches(@"(?m)^physical\s+0 B ", show.Output);
        Assert.Matches(@"(?m)^ratio\s+1\.00x ", show.Output);
        var list = await Cli("volume", "list");
        Ok(list);
        Assert.Matches(@"COMPRESS\s+CHECKSUM\s+LOGICAL\s+PHYSICAL\s+RATIO", list.Output);
        Assert.Matches(@"p1/a .* zstd:9\s+on\s+0 B\s+0 B\s+1\.00x", list.Output);
    }

    [Fact]
    public async Task VolumeShow_100TiBVolume_PrintsItsMapMemory_OneRootPage()
    {
        Ok(await Cli("volume", "create", "p1/big", "--size", "100T", "--checksum", "on"));

        var show = await Cli("volume", "show", "p1/big");

        Ok(show);
        Assert.Matches(@"(?m)^map\s+4\.02 KiB \(daemon memory of its map", show.Output);
        Assert.Equal(4120, (await Json("volume", "show", "p1/big")).GetProperty("map_bytes").GetInt64());
    }

    [Fact]
    public async Task PoolShow_PrintsLogicalPhysicalAndRatio()
    {
        var show = await Cli("pool", "show", "p1");

        Ok(show);
        Assert.Matches(@"(?m)^logical\s+0 B ", show.Output);
        Assert.Matches(@"(?m)^physical\s+0 B ", show.Output);
        Assert.Matches(@"(?m)^ratio\s+1\.00x ", show.Output);
        Assert.Contains("0 checksum errors", show.Output);
        JsonElement json = await Json("pool", "show", "p1");
        Assert.Equal(0, json.GetProperty("logical_bytes").GetInt64());
        Assert.Equal(1.0, json.GetProperty("compression_ratio").GetDouble());
    }

    [Theory]
    [InlineData("zstd:99")]
    [InlineData("gzip")]
    public async Task VolumeCreate_BadCompress_IsRefusedNamingTheValue_AndCreatesNothing(string compress)
    {
        var r = await Cli("volume", "create", "p1/a", "--size", "16M", "--compress", compress);

        Assert.True(r.ExitCode == 2, r.ToString()); // refused by the daemon
        Assert.Contains("compress", r.Error);
        Assert.Contains($"'{compress}'", r.Error);
        Assert.Empty((await Json("volume", "list")).EnumerateArray());
    }

    [Fact]
    public async Task VolumeCreate_ChecksumNeitherOnNorOff_IsAUsageError_AndCreatesNothing()
    {
        var r = await Cli("volume", "create", "p1/a", "--size", "16M", "--checksum", "yes");

        Assert.True(r.ExitCode == 1, r.ToString());
        Assert.Contains("'yes' not recognized", r.Error);
        Assert.Contains("'on'", r.Error);
        Assert.Contains("'off'", r.Error);
        Assert.Empty((await Json("volume", "list")).EnumerateArray());
    }
}
