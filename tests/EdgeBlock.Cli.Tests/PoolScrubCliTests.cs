using System.CommandLine;
using System.Net;
using System.Text.Json;
using EdgeBlock.Daemon;
using EdgeBlock.Storage;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Cli.Tests;

/// <summary>
/// `pool scrub` through the real CLI against a real daemon (in-process, its API on a Unix socket in a temp directory)
/// with a pool p1 over one file: following to the report (JSON lines, plain lines), the bad chunks listed with exit 2,
/// --detach, --status, --cancel and resuming, and Ctrl-C that stops following but not the scrub.
/// </summary>
public sealed class PoolScrubCliTests : IAsyncLifetime
{
    private const int ChunkBlocks = 4; // 16 KiB chunks of 4 KiB blocks
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "ebscc-" + Guid.NewGuid().ToString("N")[..12]);
    private RunningDaemon? _daemon;

    private string Socket => Path.Combine(_directory, "api.sock");
    private string Drive => Path.Combine(_directory, "d0.img");

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_directory);
        await StartDaemonAsync();
        Ok(await Cli("pool", "create", "p1", Drive + ":64M"));
    }

    public async Task DisposeAsync()
    {
        if (_daemon != null) await _daemon.DisposeAsync();
        try { Directory.Delete(_directory, recursive: true); } catch (IOException) { }
    }

    private async Task StartDaemonAsync() =>
        _daemon = await DaemonHost.StartAsync(new DaemonOptions
        {
            DataDirectory = _directory,
            Listen = new IPEndPoint(IPAddress.Loopback, 0),
            DefaultSizeBytes = 1 << 20,
            DefaultBackend = BackendKind.Memory,
            ApiSocketPath = Socket,
        }, configureLogging: l => l.SetMinimumLevel(LogLevel.Warning));

    private sealed record Result(int ExitCode, string Output, string Error)
    {
        public string[] Lines => Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        public override string ToString() => $"exit {ExitCode}\nstdout:\n{Output}\nstderr:\n{Error}";
    }

    /// <summary>`edgeblock ARGS --api-socket SOCKET` with the pool commands registered (as Program.cs does); cancel is Ctrl-C.</summary>
    private async Task<Result> Cli(string[] args, CancellationToken cancel = default)
    {
        var root = ManagementCommands.CreateRoot();
        PoolCommands.AddTo(root);
        var output = new StringWriter();
        var error = new StringWriter();
        int code = await root.Parse([.. args, "--api-socket", Socket]).InvokeAsync(new InvocationConfiguration { Output = output, Error = error }, cancel);
        return new Result(code, output.ToString(), error.ToString());
    }

    private Task<Result> Cli(params string[] args) => Cli(args, CancellationToken.None);

    private static void Ok(Result r) => Assert.True(r.ExitCode == 0, r.ToString());

    /// <summary>A checksummed volume with <paramref name="blocks"/> blocks of random data from LBA 0; returns the data.</summary>
    private async Task<byte[]> VolumeWithDataAsync(string name, int blocks)
    {
        Ok(await Cli("volume", "create", $"p1/{name}", "--size", "16M", "--checksum", "on"));
        await using IBlockDevice device = _daemon!.Daemon.Pools.Get("p1").OpenVolume(name);
        byte[] data = new byte[blocks * device.BlockSize];
        new Random(blocks * 31 + name[0]).NextBytes(data);
        Assert.Equal(BlockStatus.Success, await device.WriteAsync(0, data, fua: false));
        Assert.Equal(BlockStatus.Success, await device.FlushAsync());
        return data;
    }

    /// <summary>Holds p1's next scrub at <paramref name="at"/> chunks checked, for <paramref name="hold"/> or until it is cancelled.</summary>
    private ManualResetEventSlim HoldAt(long at, TimeSpan hold)
    {
        var held = new ManualResetEventSlim();
        _daemon!.Daemon.Pools.Scrubs.ProgressHook = (_, p, cancel) =>
        {
            if (p.ChunksChecked != at || held.IsSet) return;
            held.Set();
            cancel.WaitHandle.WaitOne(hold);
        };
        return held;
    }

    [Fact]
    public async Task PoolScrub_Json_EmitsParseableProgressLines_EndingWithTheReport_AndExits0()
    {
        await VolumeWithDataAsync("a", 16 * ChunkBlocks);
        HoldAt(5, TimeSpan.FromSeconds(1.5)); // long enough for progress lines

        var r = await Cli("pool", "scrub", "p1", "--json", "--io-share", "1");

        Ok(r);
        JsonElement[] lines = r.Lines.Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        Assert.True(lines.Length >= 2, r.ToString());
        Assert.All(lines[..^1], l =>
        {
            Assert.Equal("running", l.GetProperty("state").GetString());
            Assert.Equal(16, l.GetProperty("chunks_total").GetInt64());
            Assert.False(l.TryGetProperty("errors", out _));
        });
        JsonElement report = lines[^1];
        Assert.Equal("finished", report.GetProperty("state").GetString());
        Assert.Equal(16, report.GetProperty("chunks_checked").GetInt64());
        Assert.Equal(16 * 16384, report.GetProperty("bytes_checked").GetInt64());
        Assert.Equal(0, report.GetProperty("error_count").GetInt32());
        Assert.Empty(report.GetProperty("errors").EnumerateArray());
    }

    [Fact]
    public async Task PoolScrub_CorruptedChunk_IsListedWithVolumeAndLbas_AndExits2_AsStatusDoesAfter()
    {
        byte[] data = await VolumeWithDataAsync("a", 4 * ChunkBlocks);
        await _daemon!.DisposeAsync(); // the daemon holds its drives locked: flip the byte while it is stopped
        _daemon = null;
        FlipByteOf(data.AsSpan(5 * 4096, 4096)); // block 5: chunk 1, LBAs 4-7
        await StartDaemonAsync();

        var r = await Cli("pool", "scrub", "p1");

        Assert.True(r.ExitCode == 2, r.ToString());
        Assert.Matches(@"pool p1: scrub finished: 4 chunks \(64 KiB\) checked in [0-9.]+ s, 1 bad chunk", r.Output);
        Assert.Contains("  p1/a LBAs 4-7: checksum mismatch", r.Output);
        var status = await Cli("pool", "scrub", "p1", "--status");
        Assert.True(status.ExitCode == 2, status.ToString());
        Assert.Contains("  p1/a LBAs 4-7: checksum mismatch", status.Output);
        var json = await Cli("pool", "scrub", "p1", "--status", "--json");
        Assert.Equal(1, JsonDocument.Parse(json.Output).RootElement.GetProperty("error_count").GetInt32());
    }

    private void FlipByteOf(ReadOnlySpan<byte> block)
    {
        using var file = new FileStream(Drive, FileMode.Open, FileAccess.ReadWrite);
        byte[] all = new byte[file.Length];
        file.ReadExactly(all);
        int at = all.AsSpan(1 << 20).IndexOf(block);
        Assert.True(at >= 0, "the block is not in the drive file");
        long offset = (1 << 20) + at + 100;
        file.Position = offset;
        file.WriteByte((byte)(all[offset] ^ 0x40));
    }

    [Fact]
    public async Task PoolScrub_DetachStatusCancel_ThenAFollowResumes_WithPlainLinesAndTheReport()
    {
        await VolumeWithDataAsync("a", 16 * ChunkBlocks);
        ManualResetEventSlim held = HoldAt(5, TimeSpan.FromSeconds(30));

        var detached = await Cli("pool", "scrub", "p1", "--detach");
        Ok(detached);
        Assert.Contains("pool p1: scrub started in the background (I/O share 0.25)", detached.Output);
        Assert.True(held.Wait(TimeSpan.FromSeconds(30)));
        var status = await Cli("pool", "scrub", "p1", "--status");
        Ok(status);
        Assert.Matches(@"scrub p1: 5/16 chunks, 80 KiB, .*0 bad.*\(running", status.Output);

        var cancelled = await Cli("pool", "scrub", "p1", "--cancel");
        Ok(cancelled);
        Assert.Contains("pool p1: scrub cancelled after 5 chunks (80 KiB), no bad chunks so far; `edgeblock pool scrub p1` resumes it", cancelled.Output);
        var again = await Cli("pool", "scrub", "p1", "--cancel");
        Assert.True(again.ExitCode == 2, again.ToString());
        Assert.Contains("no scrub is running", again.Error);

        HoldAt(6, TimeSpan.FromSeconds(1.5)); // so the start answers while it runs
        var followed = await Cli("pool", "scrub", "p1");
        Ok(followed);
        Assert.Matches(@"^scrub p1: 5/16 chunks", followed.Lines[0]); // resumed where it was cancelled
        Assert.Matches(@"pool p1: scrub finished: 16 chunks \(256 KiB\) checked in .*, no bad chunks$", followed.Lines[^1]);
    }

    [Fact]
    public async Task PoolScrub_CtrlCWhileFollowing_StopsFollowingOnly_TheScrubGoesOn()
    {
        await VolumeWithDataAsync("a", 16 * ChunkBlocks);
        ManualResetEventSlim held = HoldAt(5, TimeSpan.FromSeconds(30));
        using var ctrlC = new CancellationTokenSource();
        Task<Result> following = Cli(["pool", "scrub", "p1"], ctrlC.Token);
        Assert.True(held.Wait(TimeSpan.FromSeconds(30)));

        await ctrlC.CancelAsync();
        var r = await following;

        Assert.True(r.ExitCode == 130, r.ToString());
        Assert.Contains("the scrub of pool p1 goes on in the daemon", r.Error);
        Assert.Contains("`edgeblock pool scrub p1 --cancel` cancels it", r.Error);
        var status = await Cli("pool", "scrub", "p1", "--status", "--json");
        Assert.Equal("running", JsonDocument.Parse(status.Output).RootElement.GetProperty("state").GetString());
        Ok(await Cli("pool", "scrub", "p1", "--cancel"));
    }

    [Fact]
    public async Task PoolScrub_WhileOneRuns_AttachesToIt()
    {
        await VolumeWithDataAsync("a", 16 * ChunkBlocks);
        HoldAt(5, TimeSpan.FromSeconds(3));
        Ok(await Cli("pool", "scrub", "p1", "--detach", "--io-share", "1"));

        var r = await Cli("pool", "scrub", "p1", "--restart", "--json");

        Ok(r);
        Assert.Contains("a scrub is already running; following it (--restart and --io-share apply to a new one", r.Error);
        Assert.Equal(16, JsonDocument.Parse(r.Lines[^1]).RootElement.GetProperty("chunks_checked").GetInt64());
    }

    [Theory]
    [InlineData(new[] { "pool", "scrub", "p1", "--status", "--cancel" }, 1, "exclude each other")]
    [InlineData(new[] { "pool", "scrub", "p1", "--cancel", "--restart" }, 1, "--cancel takes no")]
    [InlineData(new[] { "pool", "scrub", "p1", "--io-share", "1.5" }, 2, "io_share 1.5 must be above 0 and at most 1")]
    [InlineData(new[] { "pool", "scrub", "nope" }, 2, "no pool nope")]
    [InlineData(new[] { "pool", "scrub", "p1", "--status" }, 2, "no scrub has run")]
    public async Task PoolScrub_BadUse_IsRefused(string[] args, int exit, string message)
    {
        var r = await Cli(args);

        Assert.True(r.ExitCode == exit, r.ToString());
        Assert.Contains(message, r.Error);
    }
}
