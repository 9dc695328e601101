using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using EdgeBlock.Api;
using EdgeBlock.Api.Pools;
using EdgeBlock.Images;
using Spectre.Console;

namespace EdgeBlock.Cli;

/// <summary>
/// `edgeblock image info|import|export|jobs`. `info` reads the file in this process (the Images layer alone);
/// import and export are jobs of the daemon, which opens the file itself (so it must be under the daemon's data
/// directory or a storage root), started through the API and followed to their end: a progress bar on a terminal, a
/// line every few seconds otherwise, one JSON line per second with --json. Ctrl-C cancels the job (an unfinished
/// import removes its volume, an export its file); --detach starts it and returns.
/// Exit codes: 0 finished, 2 refused, failed or cancelled, 3 daemon unreachable.
/// </summary>
internal static class ImageCommands
{
    private static readonly TimeSpan Poll = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan PlainEvery = TimeSpan.FromSeconds(5);

    public static void AddTo(RootCommand root)
    {
        var socket = root.Options.OfType<Option<string?>>().First(o => o.Name == "--api-socket");
        var image = new Command("image", "VM images (qcow2, raw): inspect them, import them into volumes, export volumes to them")
        {
            Info(), Import(socket), Attach(socket), Export(socket), Jobs(socket),
        };
        root.Subcommands.Add(image);
    }

    // ---- info ----------------------------------------------------------------------------------

    private static Command Info()
    {
        var file = new Argument<string>("FILE") { Description = "A qcow2 or raw image" };
        var json = new Option<bool>("--json") { Description = "Print the information as JSON (the backing chain nested)" };
        var command = new Command("info", "Show an image as `qemu-img info --backing-chain` does: format, virtual size, disk size, data, backing chain, compression")
        {
            file, json,
        };
        command.SetAction(parse =>
        {
            TextWriter output = parse.InvocationConfiguration.Output, error = parse.InvocationConfiguration.Error;
            try
            {
                using ImageReader reader = ImageFile.Open(parse.GetValue(file)!);
                ImageInfo info = ImageInfo.Of(reader);
                if (parse.GetValue(json)) output.WriteLine(JsonSerializer.Serialize(info, ApiJson.Options));
                else PrintInfo(output, info);
                return 0;
            }
            catch (ImageException e)
            {
                error.WriteLine($"edgeblock: refused: {e.Message}");
                return ManagementCommands.ExitRefused;
            }
        });
        return command;
    }

    private static void PrintInfo(TextWriter output, ImageInfo info)
    {
        for (ImageInfo? i = info; i != null; i = i.Backing)
        {
            if (i != info) output.WriteLine();
            output.WriteLine($"image: {i.Path}");
            output.WriteLine($"file format: {i.Format}");
            output.WriteLine($"virtual size: {Sizes.Format(i.VirtualSize)} ({Num(i.VirtualSize)} bytes)");
            output.WriteLine($"disk size: {Sizes.Format(i.DiskBytes)}");
            output.WriteLine($"data: {Sizes.Format(i.DataBytes)} ({Num(i.DataBytes)} bytes of the virtual disk, in this image)");
            if (i.ClusterSize is { } cluster) output.WriteLine($"cluster_size: {Num(cluster)}");
            if (i.BackingFile is { } backing)
                output.WriteLine($"backing file: {backing}{(i.Backing is { } b && b.Path != backing ? $" (actual path: {b.Path})" : "")}");
            if (i.BackingFormat is { } backingFormat) output.WriteLine($"backing file format: {backingFormat}");
            if (i.Version is { } version)
            {
                output.WriteLine("Format specific information:");
                output.WriteLine($"    compat: {(version == 2 ? "0.10" : "1.1")}");
                output.WriteLine($"    compression type: {(i.CompressionType == "deflate" ? "zlib" : i.CompressionType)}");
                output.WriteLine($"    extended l2: {(i.ExtendedL2 == true ? "true" : "false")}");
                if (i.Dirty == true) output.WriteLine("    dirty: true (refcounts may be stale; the data reads fine)");
            }
        }
    }

    // ---- import and export ---------------------------------------------------------------------

    private static Command Import(Option<string?> socket)
    {
        var file = new Argument<string>("FILE") { Description = "A qcow2 or raw image under the daemon's data directory or a storage root; - streams a raw image from stdin (needs --size)" };
        var target = PoolCommands.VolumeArgument("POOL/NAME", "The new volume");
        var size = new Option<string?>("--size") { Description = "Volume size, at least the image's virtual size (default: that size)", HelpName = "S" };
        var group = new Option<string?>("--group") { Description = "Quota group of the volume", HelpName = "T" };
        var reserve = new Option<string?>("--reserve") { Description = "Space reserved for the volume", HelpName = "S" };
        var (json, detach) = FollowOptions();
        var command = new Command("import", "Import a qcow2 or raw image into a new volume, writing only its data (the volume stays thin)")
        {
            file, target, size, group, reserve, json, detach,
        };
        ApiAction.Set(command, socket, async call =>
        {
            string path = call.Parse.GetValue(file)!;
            (string pool, string name) = PoolCommands.Split(call.Parse.GetValue(target)!);
            if (path == "-")
                return await ImportStdinAsync(call, pool, name, call.Parse.GetValue(size), call.Parse.GetValue(group), call.Parse.GetValue(reserve), call.Parse.GetValue(json));
            var request = new ImageImportRequest(Path.GetFullPath(path), name, call.Parse.GetValue(size), call.Parse.GetValue(group), call.Parse.GetValue(reserve));
            string body = await call.Api.SendAsync(HttpMethod.Post, $"v1/pools/{ApiClient.Escape(pool)}/images/import", request);
            return await FollowAsync(call, body, call.Parse.GetValue(json), call.Parse.GetValue(detach));
        });
        return command;
    }

    /// <summary>
    /// `image import - POOL/NAME --size S`: a raw image read from stdin, streamed to the daemon in the request body (the
    /// daemon cannot open the CLI's stdin; no copy lands in a file first). Progress is what the CLI has sent: a line
    /// every 5 s on stderr, or JSON lines with --json; the last line is the finished job.
    /// </summary>
    private static async Task<int> ImportStdinAsync(ApiInvocation call, string pool, string name, string? size, string? group, string? reserve, bool json)
    {
        if (string.IsNullOrEmpty(size))
        {
            call.Error.WriteLine("edgeblock: refused: an image from stdin needs --size (the volume is made before the stream's length is known)");
            return ManagementCommands.ExitRefused;
        }
        string query = $"name={ApiClient.Escape(name)}&size={ApiClient.Escape(size)}" +
            (group is null ? "" : $"&group={ApiClient.Escape(group)}") + (reserve is null ? "" : $"&reserve={ApiClient.Escape(reserve)}");
        await using Stream stdin = Console.OpenStandardInput();
        var counted = new CountingStream(stdin);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Task<string> post = call.Api.PostStreamAsync($"v1/pools/{ApiClient.Escape(pool)}/images/import-stream?{query}", counted, call.Cancel);
        while (await Task.WhenAny(post, Task.Delay(json ? Poll : TimeSpan.FromSeconds(5), call.Cancel)) != post)
        {
            long sent = counted.Bytes;
            double rate = sent / Math.Max(clock.Elapsed.TotalSeconds, 0.001);
            if (json) call.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $$"""{"bytes_read": {{sent}}, "bytes_per_second": {{rate:0}}}"""));
            else call.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"import {pool}/{name} from stdin: {Sizes.Format(sent)} sent, {rate / 1e6:0.0} MB/s"));
        }
        string body = await post;
        call.Out.WriteLine(json ? Compact(body) : Line(ApiClient.Parse<ImageJobStatus>(body)));
        return 0;
    }

    /// <summary>A read-only pass-through that counts the bytes read (the progress of a streamed import).</summary>
    private sealed class CountingStream(Stream inner) : Stream
    {
        private long _bytes;
        public long Bytes => Interlocked.Read(ref _bytes);
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => Bytes; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => Counted(inner.Read(buffer, offset, count));
        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            Counted(await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false));
        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        private int Counted(int n)
        {
            Interlocked.Add(ref _bytes, n);
            return n;
        }
    }

    private static Command Attach(Option<string?> socket)
    {
        var file = new Argument<string>("FILE") { Description = "A qcow2 or raw image under the daemon's data directory or a storage root; it must not change until the copy is done" };
        var target = PoolCommands.VolumeArgument("POOL/NAME", "The new volume");
        var size = new Option<string?>("--size") { Description = "Volume size, at least the image's virtual size (default: that size)", HelpName = "S" };
        var group = new Option<string?>("--group") { Description = "Quota group of the volume", HelpName = "T" };
        var share = new Option<double?>("--io-share") { Description = $"Share of the drives' time the background copy may use, above 0 and at most 1 (default 0.5)", HelpName = "F" };
        var json = new Option<bool>("--json") { Description = "Print the new volume as the API's JSON" };
        var command = new Command("attach",
            "Create a volume from an image at once (instant boot): reads of blocks not yet copied come from the image, writes go to the volume, " +
            "a background copy moves the rest (see `image jobs`, `volume show`) and then lets go of the image")
        {
            file, target, size, group, share, json,
        };
        ApiAction.Set(command, socket, async call =>
        {
            (string pool, string name) = PoolCommands.Split(call.Parse.GetValue(target)!);
            var request = new ImageAttachRequest(Path.GetFullPath(call.Parse.GetValue(file)!), name, call.Parse.GetValue(size), call.Parse.GetValue(group), call.Parse.GetValue(share));
            string body = await call.Api.SendAsync(HttpMethod.Post, $"v1/pools/{ApiClient.Escape(pool)}/images/attach", request);
            if (call.Parse.GetValue(json))
            {
                call.Out.WriteLine(body);
                return 0;
            }
            VolumeInfo v = ApiClient.Parse<VolumeInfo>(body);
            call.Out.WriteLine($"volume {v.Pool}/{v.Name} attached to {v.OriginCopy?.File}: {Sizes.Format(v.SizeBytes)}, uuid {v.Uuid}; usable now, copying in the background (`edgeblock image jobs`)");
            return 0;
        });
        return command;
    }

    private static Command Export(Option<string?> socket)
    {
        var source = PoolCommands.VolumeArgument("POOL/NAME[@SNAP]", "The volume or snapshot", snapshot: true, snapshotOptional: true);
        var file = new Argument<string>("FILE") { Description = "The new image file, under the daemon's data directory or a storage root" };
        var format = new Option<string>("--format") { Description = "qcow2 or raw (both sparse)", Required = true };
        format.AcceptOnlyFromAmong("qcow2", "raw");
        var compress = new Option<string?>("--compress") { Description = "Compress qcow2 clusters: deflate or zstd" };
        compress.AcceptOnlyFromAmong("deflate", "zstd");
        var (json, detach) = FollowOptions();
        var command = new Command("export", "Export a volume or snapshot to a new image file (a snapshot gives a consistent image of a volume in use)")
        {
            source, file, format, compress, json, detach,
        };
        command.Validators.Add(r =>
        {
            if (r.GetValue(compress) != null && r.GetValue(format) != "qcow2") r.AddError("--compress needs --format qcow2");
        });
        ApiAction.Set(command, socket, async call =>
        {
            (string pool, string name) = PoolCommands.Split(call.Parse.GetValue(source)!);
            var request = new ImageExportRequest(name, Path.GetFullPath(call.Parse.GetValue(file)!), call.Parse.GetValue(format), call.Parse.GetValue(compress));
            string body = await call.Api.SendAsync(HttpMethod.Post, $"v1/pools/{ApiClient.Escape(pool)}/images/export", request);
            return await FollowAsync(call, body, call.Parse.GetValue(json), call.Parse.GetValue(detach));
        });
        return command;
    }

    private static Command Jobs(Option<string?> socket)
    {
        var json = new Option<bool>("--json") { Description = "Print the API's JSON" };
        var cancel = new Option<string?>("--cancel") { Description = "Cancel the running job ID", HelpName = "ID" };
        var command = new Command("jobs", "List the daemon's image imports, exports and attach copies (since it started), or cancel an import or export") { json, cancel };
        ApiAction.Set(command, socket, async call =>
        {
            if (call.Parse.GetValue(cancel) is { } id)
            {
                string cancelled = await call.Api.SendAsync(HttpMethod.Delete, $"v1/image-jobs/{ApiClient.Escape(id)}");
                call.Out.WriteLine(call.Parse.GetValue(json) ? cancelled : Line(ApiClient.Parse<ImageJobStatus>(cancelled)));
                return 0;
            }
            string body = await call.Api.SendAsync(HttpMethod.Get, "v1/image-jobs");
            if (call.Parse.GetValue(json)) call.Out.WriteLine(body);
            else foreach (ImageJobStatus s in ApiClient.Parse<List<ImageJobStatus>>(body)) call.Out.WriteLine(Line(s));
            return 0;
        });
        return command;
    }

    private static (Option<bool> Json, Option<bool> Detach) FollowOptions() =>
        (new Option<bool>("--json") { Description = "One JSON line per second while it runs, then the final status as a JSON line" },
         new Option<bool>("--detach") { Description = "Start it and return; the daemon runs it in the background (`edgeblock image jobs` shows it)" });

    /// <summary>Follows the job (a status a second, and its end at once), showing it, until it ends; Ctrl-C cancels it.</summary>
    private static async Task<int> FollowAsync(ApiInvocation call, string body, bool json, bool detach)
    {
        var s = ApiClient.Parse<ImageJobStatus>(body);
        if (detach)
        {
            call.Out.WriteLine(json ? Compact(body) : $"{Line(s)}; follow it with `edgeblock image jobs`, cancel it with `edgeblock image jobs --cancel {s.Id}`");
            return 0;
        }
        string path = $"v1/image-jobs/{ApiClient.Escape(s.Id)}";
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(call.Cancel);
        using var ctrlC = PosixSignalRegistration.Create(PosixSignal.SIGINT, signal =>
        {
            signal.Cancel = true;
            stop.Cancel();
        });
        async Task NextAsync()
        {
            try
            {
                // The daemon answers when the job ends or after a second (the progress refresh).
                body = await call.Api.SendAsync(HttpMethod.Get, $"{path}?wait={Poll.TotalSeconds}", cancellationToken: stop.Token);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                try
                {
                    body = await call.Api.SendAsync(HttpMethod.Delete, path); // Ctrl-C: cancel the job, answered once it stopped
                }
                catch (DaemonRefusedException e) when (e.Status == 409)
                {
                    body = await call.Api.SendAsync(HttpMethod.Get, path); // it ended meanwhile
                }
                s = ApiClient.Parse<ImageJobStatus>(body);
                return;
            }
            s = ApiClient.Parse<ImageJobStatus>(body);
        }

        if (!json && Table.IsTerminal(call.Out))
        {
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(call.Out) });
            await console.Progress().AutoClear(true).HideCompleted(false)
                .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                    new TransferSpeedColumn(), new RemainingTimeColumn())
                .StartAsync(async ctx =>
                {
                    ProgressTask bar = ctx.AddTask(Markup.Escape(Line(s)), maxValue: 1);
                    while (true)
                    {
                        bar.MaxValue = Math.Max(1, s.BytesTotal);
                        bar.Value = s.BytesTotal == 0 ? 1 : Math.Min(s.BytesDone, bar.MaxValue);
                        bar.Description = Markup.Escape(Line(s));
                        if (s.State != ImageJobStatus.Running) break;
                        await NextAsync();
                    }
                    bar.StopTask();
                });
        }
        else
        {
            DateTime lastLine = DateTime.MinValue;
            while (s.State == ImageJobStatus.Running)
            {
                if (json) call.Out.WriteLine(Compact(body));
                else if (DateTime.UtcNow - lastLine >= PlainEvery)
                {
                    call.Out.WriteLine(Line(s));
                    lastLine = DateTime.UtcNow;
                }
                await NextAsync();
            }
        }
        call.Out.WriteLine(json ? Compact(body) : Line(s));
        return s.State == ImageJobStatus.Finished ? 0 : ManagementCommands.ExitRefused;
    }

    private static string Compact(string body) => JsonSerializer.Serialize(JsonDocument.Parse(body).RootElement);

    /// <summary>"import 3 p1/vm (qcow2, zstd): running, 1.2 GiB of 2.0 GiB, 800 MiB written, 310.5 MB/s, ETA 3.1 s".</summary>
    private static string Line(ImageJobStatus s)
    {
        string what = $"{s.Kind} {s.Id} {s.Pool}/{s.Volume} {(s.Kind is ImageJobStatus.Import or ImageJobStatus.Attach ? "from" : "to")} {s.File} ({s.Format}{(s.Compression is { } c && c != "none" ? $", {c}" : "")})";
        string rate = s.BytesPerSecond is { } r ? string.Create(CultureInfo.InvariantCulture, $", {r / 1e6:0.0} MB/s") : "";
        string eta = s.EtaSeconds is { } e ? $", ETA {ScrubCommand.Duration(e)}" : "";
        string failure = s.Failure is { } f ? $": {f}" : "";
        return $"{what}: {s.State}, {Sizes.Format(s.BytesDone)} of {Sizes.Format(s.BytesTotal)}, {Sizes.Format(s.BytesWritten)} written{rate}{eta}{failure}";
    }

    private static string Num(long n) => n.ToString(CultureInfo.InvariantCulture);
}
