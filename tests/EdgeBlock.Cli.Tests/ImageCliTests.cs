using System.CommandLine;
using System.Net;
using System.Text.Json;
using EdgeBlock.Daemon;
using EdgeBlock.Images.Tests;
using EdgeBlock.Storage;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Cli.Tests;

/// <summary>
/// `image import|export|info` through the real CLI against a real daemon (in-process, API on a Unix socket) with a
/// pool p1 (64 KiB extents) over a file; images made by qemu-img in the data directory, checked with qemu-img.
/// </summary>
public sealed class ImageCliTests : IAsyncLifetime
{
    private readonly TempDir _dir = new();
    private RunningDaemon? _daemon;

    private string Socket => _dir["api.sock"];

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir["images"]);
        await StartDaemonAsync();
        Ok(await Cli("pool", "create", "p1", _dir["d0.img"] + ":256M", "--extent-size", "64K"));
    }

    private async Task StartDaemonAsync() =>
        _daemon = await DaemonHost.StartAsync(new DaemonOptions
        {
            DataDirectory = _dir.Path,
            Listen = new IPEndPoint(IPAddress.Loopback, 0),
            DefaultSizeBytes = 1 << 20,
            DefaultBackend = BackendKind.Memory,
            ApiSocketPath = Socket,
        }, configureLogging: l => l.SetMinimumLevel(LogLevel.Critical));

    /// <summary>Stops the daemon (its jobs stop, its pools commit and close) and starts it again on the same data directory.</summary>
    private async Task RestartDaemonAsync()
    {
        await _daemon!.DisposeAsync();
        _daemon = null;
        await StartDaemonAsync();
    }

    public async Task DisposeAsync()
    {
        if (_daemon != null) await _daemon.DisposeAsync();
        _dir.Dispose();
    }

    private sealed record Result(int ExitCode, string Output, string Error)
    {
        public string[] Lines => Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        public JsonElement Last => JsonDocument.Parse(Lines[^1]).RootElement;
        public override string ToString() => $"exit {ExitCode}\nstdout:\n{Output}\nstderr:\n{Error}";
    }

    private async Task<Result> Cli(params string[] args)
    {
        var root = ManagementCommands.CreateRoot();
        PoolCommands.AddTo(root);
        ImageCommands.AddTo(root);
        var output = new StringWriter();
        var error = new StringWriter();
        int code = await root.Parse([.. args, "--api-socket", Socket]).InvokeAsync(new InvocationConfiguration { Output = output, Error = error });
        return new Result(code, output.ToString(), error.ToString());
    }

    private static void Ok(Result r) => Assert.True(r.ExitCode == 0, r.ToString());

    private static void Refused(Result r, string expected)
    {
        Assert.True(r.ExitCode == ManagementCommands.ExitRefused, r.ToString());
        Assert.Contains(expected, r.Error + r.Output);
    }

    /// <summary>The volume's bytes, read through the pool.</summary>
    private async Task<byte[]> ReadVolumeAsync(string name)
    {
        await using IBlockDevice device = _daemon!.Daemon.Pools.Get("p1").OpenSnapshotForReading(name);
        byte[] all = new byte[device.BlockCount * device.BlockSize];
        Assert.Equal(BlockStatus.Success, await device.ReadAsync(0, all));
        return all;
    }

    /// <summary>Makes an image of the test disk with qemu-img in the data directory (a chain for "chain").</summary>
    private string MakeImage(string variant)
    {
        string raw = _dir["images/disk.raw"];
        if (!File.Exists(raw)) TestImages.WriteRaw(raw);
        string image = _dir[$"images/{variant}.qcow2"];
        string[] options = variant switch
        {
            "v2" => ["-o", "compat=0.10"],
            "deflate" => ["-c"],
            "zstd" => ["-c", "-o", "compression_type=zstd"],
            "extended-l2" => ["-o", "extended_l2=on,cluster_size=16k"],
            _ => [],
        };
        if (variant == "raw") return raw;
        QemuImg.Ok("qemu-img", ["convert", "-f", "raw", "-O", "qcow2", .. options, raw, image]);
        if (variant == "chain")
        {
            QemuImg.Ok("qemu-img", "create", "-f", "qcow2", "-b", "chain.qcow2", "-F", "qcow2", _dir["images/mid.qcow2"]);
            QemuImg.Ok("qemu-io", "-f", "qcow2", "-c", "write -P 0x11 2m 192k", _dir["images/mid.qcow2"]);
            QemuImg.Ok("qemu-img", "create", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", _dir["images/top.qcow2"]);
            QemuImg.Ok("qemu-io", "-f", "qcow2", "-c", "write -z 0 64k", "-c", "write -P 0x33 7m 64k", _dir["images/top.qcow2"]);
            return _dir["images/top.qcow2"];
        }
        return image;
    }

    [QemuImgTheory]
    [InlineData("v2")]
    [InlineData("v3")]
    [InlineData("deflate")]
    [InlineData("zstd")]
    [InlineData("extended-l2")]
    [InlineData("chain")]
    [InlineData("raw")]
    public async Task Import_QemuImgImage_ReadsBackAsQemuRawAndStaysThin(string variant)
    {
        string image = MakeImage(variant);
        Result r = await Cli("image", "import", image, $"p1/{variant}", "--json");
        Ok(r);
        Assert.Equal("finished", r.Last.GetProperty("state").GetString());
        byte[] expected = TestImages.QemuRaw(_dir, image);
        byte[] volume = await ReadVolumeAsync(variant);
        Assert.True(expected.AsSpan().SequenceEqual(volume), "the volume differs from qemu-img convert -O raw");
        // Thin: the volume's allocated bytes are about the image's data (64 KiB extents), not its 16 MiB.
        long written = r.Last.GetProperty("bytes_written").GetInt64();
        long allocated = _daemon!.Daemon.Pools.GetVolume("p1", variant).AllocatedBytes;
        Assert.InRange(written, 300_000, 800_000);
        Assert.InRange(allocated, written, 2 << 20);
    }

    [QemuImgTheory]
    [InlineData("qcow2", null)]
    [InlineData("qcow2", "deflate")]
    [InlineData("qcow2", "zstd")]
    [InlineData("raw", null)]
    public async Task Export_Snapshot_PassesQemuImgCheckAndComparesIdenticalToARawExport(string format, string? compress)
    {
        Ok(await Cli("image", "import", MakeImage("v3"), "p1/vm"));
        Ok(await Cli("volume", "snapshot", "p1/vm@s1"));
        string image = _dir[$"images/out.{format}"];
        Result r = await Cli(["image", "export", "p1/vm@s1", image, "--format", format, .. compress == null ? Array.Empty<string>() : ["--compress", compress]]);
        Ok(r);
        Ok(await Cli("image", "export", "p1/vm@s1", _dir["images/volume.raw"], "--format", "raw"));
        if (format == "qcow2") Assert.Contains("No errors were found on the image.", QemuImg.Ok("qemu-img", "check", image));
        Assert.Contains("Images are identical.", QemuImg.Ok("qemu-img", "compare", "-f", format, "-F", "raw", image, _dir["images/volume.raw"]));
        byte[] snapshot = await ReadVolumeAsync("vm@s1");
        Assert.True(snapshot.AsSpan().SequenceEqual(File.ReadAllBytes(_dir["images/volume.raw"])));
        using EdgeBlock.Images.ImageReader written = EdgeBlock.Images.ImageFile.Open(image); // sparse: holes (raw) or unallocated clusters
        Assert.InRange(format == "raw" ? written.AllocatedBytes() : new FileInfo(image).Length, 1, 2 << 20);
    }

    [Fact]
    public async Task Import_FileOutsideTheStorageRoots_IsRefusedNamingTheRule()
    {
        using var outside = new TempDir();
        TestImages.WriteRaw(outside["disk.raw"]);
        Refused(await Cli("image", "import", outside["disk.raw"], "p1/x"), "files must be under the data directory");
        Assert.DoesNotContain(_daemon!.Daemon.Pools.ListVolumes("p1"), v => v.Name == "x");
    }

    [Fact]
    public async Task Import_HostileImage_IsRefusedBeforeAVolumeIsMade()
    {
        string path = SmallImage("bad.qcow2");
        HostileImages.WriteU32(path, 20, 8); // cluster_bits
        Refused(await Cli("image", "import", path, "p1/x"), "cluster_bits 8 is out of range");
        Assert.Empty(_daemon!.Daemon.Pools.ListVolumes("p1"));
    }

    [Fact]
    public async Task Import_ImageFoundBadWhileCopying_FailsAndRemovesTheVolume()
    {
        string path = SmallImage("late.qcow2");
        // A data cluster past the end of the file: found only when the copy reaches it.
        HostileImages.WriteU64(path, HostileImages.FirstL2Entry(path) + 16 * 8, (1UL << 63) | (1UL << 40)); // the cluster at 1 MiB
        Result r = await Cli("image", "import", path, "p1/x", "--json");
        Refused(r, "data cluster offset 1099511627776 lies beyond the end of the file");
        Assert.Equal("failed", r.Last.GetProperty("state").GetString());
        Assert.Empty(_daemon!.Daemon.Pools.ListVolumes("p1"));
    }

    [Fact]
    public async Task Import_SmallerSizeOrStdinWithoutSize_AreRefused()
    {
        string path = SmallImage("ok.qcow2");
        Refused(await Cli("image", "import", path, "p1/x", "--size", "1M"), "smaller than the image's virtual size");
        Refused(await Cli("image", "import", "-", "p1/x"), "an image from stdin needs --size");
        Ok(await Cli("image", "import", path, "p1/x", "--size", "8M"));
        Assert.Equal(8 << 20, _daemon!.Daemon.Pools.GetVolume("p1", "x").SizeBytes);
    }

    /// <summary>A raw image with data, zero blocks and a partial last block: 3 MiB + 1000 bytes, the middle MiB zero.</summary>
    private static byte[] StreamedImage()
    {
        var raw = new byte[(3 << 20) + 1000];
        new Random(9).NextBytes(raw);
        raw.AsSpan(1 << 20, 1 << 20).Clear();
        return raw;
    }

    [Fact]
    public async Task ImportStream_RawBody_ReadsBackIdenticalAndStaysThin()
    {
        byte[] raw = StreamedImage();
        using var api = new ApiClient(Socket);
        // The CLI's `image import -` posts stdin this way; a pipe has no length, nor has this stream.
        string body = await api.PostStreamAsync("v1/pools/p1/images/import-stream?name=s&size=4M", new UnseekableStream(raw));
        var job = ApiClient.Parse<EdgeBlock.Api.Pools.ImageJobStatus>(body);
        Assert.Equal(("finished", "-", "raw", (long)raw.Length), (job.State, job.File, job.Format, job.BytesDone));
        byte[] expected = new byte[4 << 20];
        raw.CopyTo(expected, 0);
        byte[] volume = await ReadVolumeAsync("s");
        Assert.True(expected.AsSpan().SequenceEqual(volume), "the streamed volume differs from the image");
        Assert.Equal((2 << 20) + 4096, job.BytesWritten); // the zero MiB and the zero padding were not written
        Assert.InRange(_daemon!.Daemon.Pools.GetVolume("p1", "s").AllocatedBytes, (2 << 20) + 4096, (2 << 20) + (128 << 10));
    }

    [Fact]
    public async Task ImportStream_LongerThanTheSize_IsRefusedAndLeavesNoVolume()
    {
        using var api = new ApiClient(Socket);
        var e = await Assert.ThrowsAsync<DaemonRefusedException>(() => api.PostStreamAsync("v1/pools/p1/images/import-stream?name=s&size=2M", new UnseekableStream(StreamedImage())));
        Assert.Equal(400, e.Status);
        Assert.Contains("the stream holds more than the volume's size 2 MiB", e.Detail);
        Assert.Empty(_daemon!.Daemon.Pools.ListVolumes("p1"));
        var noSize = await Assert.ThrowsAsync<DaemonRefusedException>(() => api.PostStreamAsync("v1/pools/p1/images/import-stream?name=s", new UnseekableStream([1, 2, 3])));
        Assert.Contains("a size is needed", noSize.Detail);
    }

    [Fact]
    public async Task JobStatus_WaitParameter_AnswersAnEndedJobAtOnceAndRefusesBadValues()
    {
        Result import = await Cli("image", "import", SmallImage("ok.qcow2"), "p1/x", "--json");
        Ok(import);
        string id = import.Last.GetProperty("id").GetString()!;
        using var api = new ApiClient(Socket);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        using JsonDocument ended = JsonDocument.Parse(await api.SendAsync(HttpMethod.Get, $"v1/image-jobs/{id}?wait=10"));
        Assert.Equal("finished", ended.RootElement.GetProperty("state").GetString());
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"an ended job's status waited {clock.Elapsed}");
        foreach (string bad in new[] { "11", "-1", "NaN", "1e3", "soon" })
        {
            var e = await Assert.ThrowsAsync<DaemonRefusedException>(() => api.SendAsync(HttpMethod.Get, $"v1/image-jobs/{id}?wait={bad}"));
            Assert.Equal(400, e.Status);
            Assert.Contains($"wait '{bad}' is not a number of seconds from 0 to 10", e.Detail);
        }
    }

    [Fact]
    public async Task Export_ToAnExistingFile_IsRefusedAndLeavesIt()
    {
        Ok(await Cli("image", "import", SmallImage("ok.qcow2"), "p1/x"));
        File.WriteAllText(_dir["images/taken"], "keep");
        Refused(await Cli("image", "export", "p1/x", _dir["images/taken"], "--format", "qcow2"), "already exists");
        Assert.Equal("keep", File.ReadAllText(_dir["images/taken"]));
        Result usage = await Cli("image", "export", "p1/x", _dir["images/out.raw"], "--format", "raw", "--compress", "zstd");
        Assert.Equal(1, usage.ExitCode); // a usage error, caught before the daemon is asked
        Assert.Contains("--compress needs --format qcow2", usage.Error);
    }

    [Fact]
    public async Task Info_Qcow2_ShowsFormatSizesAndCompression()
    {
        string path = SmallImage("ok.qcow2", EdgeBlock.Images.Qcow2Compression.Zstd);
        Result text = await Cli("image", "info", path);
        Ok(text);
        Assert.Contains("file format: qcow2", text.Output);
        Assert.Contains("virtual size: 4 MiB (4194304 bytes)", text.Output);
        Assert.Contains("compression type: zstd", text.Output);
        Result json = await Cli("image", "info", path, "--json");
        Ok(json);
        JsonElement info = JsonDocument.Parse(json.Output).RootElement;
        Assert.Equal(4 << 20, info.GetProperty("virtual_size").GetInt64());
        Assert.Equal(4 * HostileImages.ClusterSize, info.GetProperty("data_bytes").GetInt64());
        Refused(await Cli("image", "info", _dir["images/none.qcow2"]), "cannot open the image");
    }

    // ---- attach ---------------------------------------------------------------------------------

    /// <summary>The attach copy's job of a volume, once it ended (finished or failed).</summary>
    private async Task<EdgeBlock.Api.Pools.ImageJobStatus> AttachEndedAsync(string volume)
    {
        for (var clock = System.Diagnostics.Stopwatch.StartNew(); clock.Elapsed < TimeSpan.FromSeconds(60); await Task.Delay(50))
        {
            var job = _daemon!.Daemon.Pools.Images.List().LastOrDefault(j => j.Kind == "attach" && j.Volume == volume);
            if (job is { State: not "running" }) return job;
        }
        throw new TimeoutException($"the attach copy of {volume} did not end within 60 s");
    }

    /// <summary>Writes blocks through the pool (as a guest would through an export) and flushes.</summary>
    private async Task WriteVolumeAsync(string name, long offset, byte[] data)
    {
        await using IBlockDevice device = _daemon!.Daemon.Pools.Get("p1").OpenVolume(name);
        Assert.Equal(BlockStatus.Success, await device.WriteAsync(offset / device.BlockSize, data, fua: false));
        Assert.Equal(BlockStatus.Success, await device.FlushAsync());
    }

    /// <summary>Exports the volume to a raw file with the CLI and has qemu-img compare it with the expected bytes.</summary>
    private async Task QemuCompareAsync(string volume, byte[] expected)
    {
        File.WriteAllBytes(_dir["images/expected.raw"], expected);
        Ok(await Cli("image", "export", $"p1/{volume}", _dir["images/attached.raw"], "--format", "raw"));
        Assert.Contains("Images are identical.", QemuImg.Ok("qemu-img", "compare", "-f", "raw", "-F", "raw", _dir["images/attached.raw"], _dir["images/expected.raw"]));
    }

    [QemuImgTheory]
    [InlineData("v3")]
    [InlineData("zstd")]
    [InlineData("chain")]
    public async Task Attach_QemuImgImage_ReadsAsQemuRawAtOnce_KeepsWritesAndEndsIdenticalWithoutTheImage(string variant)
    {
        string image = MakeImage(variant);
        byte[] expected = TestImages.QemuRaw(_dir, image);
        // A tiny share: the copy moves its first 1 MiB and then waits ~1000 times as long as that took.
        Result r = await Cli("image", "attach", image, "p1/vm", "--io-share", "0.001", "--json");
        Ok(r);
        JsonElement origin = JsonDocument.Parse(r.Output).RootElement.GetProperty("origin_copy");
        Assert.Equal(image, origin.GetProperty("file").GetString());
        Assert.Equal(expected.Length, origin.GetProperty("bytes_total").GetInt64());
        JsonElement shown = JsonDocument.Parse((await Cli("volume", "show", "p1/vm", "--json")).Output).RootElement.GetProperty("origin_copy");
        Assert.InRange(shown.GetProperty("bytes_copied").GetInt64(), 0, expected.Length - 1);
        Assert.True(shown.GetProperty("copying").GetBoolean());
        Refused(await Cli("volume", "snapshot", "p1/vm@s1"), "still reads from its origin");
        string jobId = _daemon!.Daemon.Pools.Images.List().Single(j => j.Kind == "attach").Id;
        Refused(await Cli("image", "jobs", "--cancel", jobId), "it is not cancelled (delete the volume to abandon it)");
        // Read at once (and so copied on read: the copy may end early now).
        byte[] before = await ReadVolumeAsync("vm");
        Assert.True(expected.AsSpan().SequenceEqual(before), "reads before the copy differ from qemu-img convert -O raw");

        // Written during the copy: in uncopied data (a partial chunk and cluster), and in a hole of the image.
        byte[] a = Pattern(1, 1), b = Pattern(3, 2);
        await WriteVolumeAsync("vm", (9 << 20) + 8192, a);
        await WriteVolumeAsync("vm", 12 << 20, b);
        a.CopyTo(expected, (9 << 20) + 8192);
        b.CopyTo(expected, 12 << 20);

        await RestartDaemonAsync(); // resumes the copy at the default share (unless the reads, copied on read, let it end)
        // The origin is dropped a moment before its job says finished: wait for both.
        for (var clock = System.Diagnostics.Stopwatch.StartNew();
             _daemon!.Daemon.Pools.GetVolume("p1", "vm").OriginCopy is not null
             || _daemon.Daemon.Pools.Images.List().Any(j => j.Kind == "attach" && j.State != "finished");
             await Task.Delay(50))
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), "the attach copy (volume and job) did not end within 60 s of the restart");
        File.Delete(image); // the volume no longer needs the image
        await QemuCompareAsync("vm", expected);
        Assert.DoesNotContain("attached image", (await Cli("volume", "show", "p1/vm")).Output);
        Ok(await Cli("volume", "snapshot", "p1/vm@s1"));
    }

    [QemuImgFact]
    public async Task Attach_ImageChangedWhileTheDaemonWasDown_KeepsThatVolumeClosedNamingTheChange()
    {
        string image = MakeImage("v3");
        Ok(await Cli("image", "attach", image, "p1/vm", "--io-share", "0.001"));
        Ok(await Cli("volume", "create", "p1/other", "--size", "1M"));
        await _daemon!.DisposeAsync();
        _daemon = null;
        QemuImg.Ok("qemu-io", "-f", "qcow2", "-c", "write -P 0x55 0 64k", image);
        await StartDaemonAsync();
        var job = await AttachEndedAsync("vm");
        Assert.Equal("failed", job.State);
        Assert.Contains("the image changed since it was attached", job.Failure);
        var refused = Assert.Throws<EdgeBlock.Volumes.VolumeException>(() => _daemon!.Daemon.Pools.Get("p1").OpenVolume("vm"));
        Assert.Contains($"volume p1/vm stays closed: its origin {image} cannot be used: the image changed since it was attached", refused.Message);
        Assert.Contains("mtime=", refused.Message);
        Assert.Contains("unusable: the image changed since it was attached", (await Cli("volume", "show", "p1/vm")).Output);
        await WriteVolumeAsync("other", 0, Pattern(1, 3)); // the pool and its other volumes go on
        File.Delete(image);
        await RestartDaemonAsync();
        Assert.Contains("cannot open the image", (await AttachEndedAsync("vm")).Failure);
        Ok(await Cli("volume", "delete", "p1/vm")); // abandoning it needs no image
        Assert.DoesNotContain(_daemon!.Daemon.Pools.ListVolumes("p1"), v => v.Name == "vm");
    }

    [QemuImgFact]
    public async Task Attach_SmallerSizeOrFileOutsideTheRoots_IsRefusedBeforeAVolumeIsMade()
    {
        string image = MakeImage("v3");
        Refused(await Cli("image", "attach", image, "p1/x", "--size", "1M"), "smaller than the image's virtual size");
        using var outside = new TempDir();
        TestImages.WriteRaw(outside["disk.raw"]);
        Refused(await Cli("image", "attach", outside["disk.raw"], "p1/x"), "files must be under the data directory");
        Refused(await Cli("image", "attach", image, "p1/x", "--io-share", "2"), "io_share 2 must be above 0 and at most 1");
        Assert.Empty(_daemon!.Daemon.Pools.ListVolumes("p1"));
    }

    private static byte[] Pattern(int blocks, int seed)
    {
        var data = new byte[blocks * 4096];
        new Random(seed).NextBytes(data);
        return data;
    }

    /// <summary>A small valid qcow2 (4 MiB, four 64 KiB data clusters) in the data directory.</summary>
    private string SmallImage(string name, EdgeBlock.Images.Qcow2Compression compression = EdgeBlock.Images.Qcow2Compression.None) =>
        HostileImages.Valid(_dir[$"images/{name}"], compression);
}

/// <summary>A stream without a length, as a pipe (stdin) is: the body goes out chunked.</summary>
internal sealed class UnseekableStream(byte[] bytes) : MemoryStream(bytes, writable: false)
{
    public override bool CanSeek => false;
}
