using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using EdgeBlock.Api;
using EdgeBlock.Api.Pools;
using Spectre.Console;

namespace EdgeBlock.Cli;

/// <summary>
/// `edgeblock pool scrub NAME`: starts a scrub of the pool in the daemon (or attaches to the running one) and follows
/// it to its report: a progress bar on a terminal, a plain line every few seconds otherwise, and with --json one JSON
/// line per second (the API's status without its error list) then the report as one JSON line (the first whose state
/// is not "running"). Ctrl-C stops following, not the scrub. --detach starts it and returns, --status prints the
/// progress or the last report, --cancel cancels it (its place is kept: the next start resumes it).
/// Exit codes: 0 no bad chunk found, 2 bad chunks found (or the scrub failed, or the daemon refused), 3 daemon
/// unreachable, 130 Ctrl-C while following.
/// </summary>
internal static class ScrubCommand
{
    public const int ExitStoppedFollowing = 130;
    private static readonly TimeSpan Poll = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan PlainEvery = TimeSpan.FromSeconds(5); // logs and pipes need no more

    public static Command Create(Option<string?> socket)
    {
        var name = new Argument<string>("NAME") { Description = "Pool name" };
        var restart = new Option<bool>("--restart") { Description = "Start over instead of resuming an unfinished scrub" };
        var ioShare = new Option<double?>("--io-share")
        {
            Description = "Share of the drives' time the scrub may use: above 0, at most 1 (default 0.25; guests keep the rest)",
            HelpName = "F",
        };
        var json = new Option<bool>("--json") { Description = "One JSON line per second while it runs, then the report as a JSON line" };
        var detach = new Option<bool>("--detach") { Description = "Start it and return; the daemon runs it in the background" };
        var status = new Option<bool>("--status") { Description = "Print the running scrub's progress, or the last report" };
        var cancel = new Option<bool>("--cancel") { Description = "Cancel the running scrub; it keeps its place (the next start resumes it)" };
        var command = new Command("scrub",
            "Read every stored chunk of the pool's checksummed volumes and snapshots and check it, in the background; follow it to its report (exit 2 when bad chunks are found)")
        {
            name, restart, ioShare, json, detach, status, cancel,
        };
        command.Validators.Add(r =>
        {
            bool s = r.GetValue(status), c = r.GetValue(cancel);
            if (s && c) r.AddError("--status and --cancel exclude each other");
            else if ((s || c) && (r.GetValue(restart) || r.GetValue(ioShare) != null || r.GetValue(detach)))
                r.AddError($"{(s ? "--status" : "--cancel")} takes no --restart, --io-share or --detach");
        });
        ApiAction.Set(command, socket, async call =>
        {
            string pool = call.Parse.GetValue(name)!;
            string path = $"v1/pools/{ApiClient.Escape(pool)}/scrub";
            bool asJson = call.Parse.GetValue(json);
            if (call.Parse.GetValue(status))
            {
                string body = await call.Api.SendAsync(HttpMethod.Get, path);
                var s = ApiClient.Parse<ScrubStatus>(body);
                if (asJson) call.Out.WriteLine(body);
                else if (s.State == ScrubStatus.Running) call.Out.WriteLine($"{ProgressLine(s)} (running; cancel it with `edgeblock pool scrub {pool} --cancel`)");
                else Report(call.Out, s);
                return ExitCode(s);
            }
            if (call.Parse.GetValue(cancel))
            {
                string body = await call.Api.SendAsync(HttpMethod.Delete, path);
                if (asJson) call.Out.WriteLine(body);
                else Report(call.Out, ApiClient.Parse<ScrubStatus>(body));
                return 0;
            }
            bool restartIt = call.Parse.GetValue(restart);
            double? share = call.Parse.GetValue(ioShare);
            string started;
            try
            {
                started = await call.Api.SendAsync(HttpMethod.Post, path, new ScrubRequest(!restartIt, share));
            }
            catch (DaemonRefusedException e) when (e.Status == 409)
            {
                // One runs already: follow that one.
                started = await call.Api.SendAsync(HttpMethod.Get, path);
                if (ApiClient.Parse<ScrubStatus>(started).State != ScrubStatus.Running) throw;
                call.Error.WriteLine($"pool {pool}: a scrub is already running; following it" +
                    (restartIt || share != null ? " (--restart and --io-share apply to a new one: cancel this one first with --cancel)" : ""));
            }
            if (call.Parse.GetValue(detach))
            {
                if (asJson) call.Out.WriteLine(started);
                else Started(call.Out, pool, ApiClient.Parse<ScrubStatus>(started));
                return 0;
            }
            return await FollowAsync(call, pool, path, started, asJson);
        });
        return command;
    }

    private static void Started(TextWriter output, string pool, ScrubStatus s)
    {
        string how = s.State != ScrubStatus.Running ? $"{s.State} at once" : s.ChunksChecked > 0 ? $"resumed at {Num(s.ChunksChecked)} chunks" : "started";
        output.WriteLine($"pool {pool}: scrub {how} in the background (I/O share {s.IoShare?.ToString(CultureInfo.InvariantCulture) ?? "?"}); " +
            $"follow it with `edgeblock pool scrub {pool}`, see it with `--status`, cancel it with `--cancel`");
    }

    /// <summary>Polls the status every second, showing it, until the scrub ends (the report) or Ctrl-C (it runs on).</summary>
    private static async Task<int> FollowAsync(ApiInvocation call, string pool, string path, string body, bool json)
    {
        var s = ApiClient.Parse<ScrubStatus>(body);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(call.Cancel);
        // System.CommandLine 2.0.0 leaves Ctrl-C to the runtime (the process dies mid-line): while following, it only stops following.
        using var ctrlC = PosixSignalRegistration.Create(PosixSignal.SIGINT, signal =>
        {
            signal.Cancel = true;
            stop.Cancel();
        });
        async Task<bool> NextAsync()
        {
            try
            {
                await Task.Delay(Poll, stop.Token);
                body = await call.Api.SendAsync(HttpMethod.Get, path, cancellationToken: stop.Token);
                s = ApiClient.Parse<ScrubStatus>(body);
                return true;
            }
            catch (OperationCanceledException)
            {
                return false;
            }
        }

        bool following = true;
        if (!json && Table.IsTerminal(call.Out))
        {
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(call.Out) });
            await console.Progress().AutoClear(true).HideCompleted(false)
                .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn())
                .StartAsync(async ctx =>
                {
                    ProgressTask bar = ctx.AddTask(Markup.Escape(ProgressLine(s)), maxValue: 1);
                    while (true)
                    {
                        bar.MaxValue = Math.Max(1, s.ChunksTotal ?? 1);
                        bar.Value = s.ChunksTotal is 0 ? 1 : Math.Min(s.ChunksChecked, bar.MaxValue);
                        bar.Description = Markup.Escape(ProgressLine(s));
                        if (s.State != ScrubStatus.Running) break;
                        if (!(following = await NextAsync())) break;
                    }
                    bar.StopTask();
                });
        }
        else
        {
            DateTime lastLine = DateTime.MinValue;
            while (s.State == ScrubStatus.Running)
            {
                if (json) call.Out.WriteLine(JsonLine(body, withErrors: false));
                else if (DateTime.UtcNow - lastLine >= PlainEvery)
                {
                    call.Out.WriteLine(ProgressLine(s));
                    lastLine = DateTime.UtcNow;
                }
                if (!(following = await NextAsync())) break;
            }
        }
        if (!following)
        {
            call.Error.WriteLine($"stopped following; the scrub of pool {pool} goes on in the daemon: `edgeblock pool scrub {pool} --status` shows it, " +
                $"`edgeblock pool scrub {pool} --cancel` cancels it");
            return ExitStoppedFollowing;
        }
        if (json) call.Out.WriteLine(JsonLine(body, withErrors: true));
        else Report(call.Out, s);
        return ExitCode(s);
    }

    /// <summary>The API's status as one line of JSON; progress lines leave the (possibly long) error list out, the report has it.</summary>
    private static string JsonLine(string body, bool withErrors)
    {
        JsonObject status = JsonNode.Parse(body)!.AsObject();
        if (!withErrors) status.Remove("errors");
        return status.ToJsonString();
    }

    private static int ExitCode(ScrubStatus s) => s.ErrorCount > 0 || s.State == ScrubStatus.Failed ? ManagementCommands.ExitRefused : 0;

    /// <summary>"scrub p1: 1,234/5,000 chunks, 12.3 MB/s, 0 bad, ETA 2m10s".</summary>
    private static string ProgressLine(ScrubStatus s)
    {
        string of = s.ChunksTotal is { } t ? $"/{Num(t)}" : "";
        string rate = s.BytesPerSecond is { } r ? $", {r / 1e6:0.0} MB/s" : "";
        string eta = s.EtaSeconds is { } e ? $", ETA {Duration(e)}" : "";
        return string.Create(CultureInfo.InvariantCulture, $"scrub {s.Pool}: {Num(s.ChunksChecked)}{of} chunks, {Sizes.Format(s.BytesChecked)}{rate}, {Num(s.ErrorCount)} bad{eta}");
    }

    /// <summary>The report: what was checked, how long it took, and each bad chunk as "POOL/VOLUME LBAs FIRST-LAST: WHAT".</summary>
    private static void Report(TextWriter output, ScrubStatus s)
    {
        string bad = s.ErrorCount switch { 0 => "no bad chunks", 1 => "1 bad chunk", var n => $"{Num(n)} bad chunks" };
        string checkedText = $"{Num(s.ChunksChecked)} chunks ({Sizes.Format(s.BytesChecked)})";
        output.WriteLine(s.State switch
        {
            ScrubStatus.Finished => $"pool {s.Pool}: scrub finished: {checkedText} checked{(s.DurationSeconds is { } d ? $" in {Duration(d)}" : "")}, {bad}",
            ScrubStatus.Cancelled => $"pool {s.Pool}: scrub cancelled after {checkedText}, {bad} so far; `edgeblock pool scrub {s.Pool}` resumes it (--restart starts over)",
            ScrubStatus.Interrupted => $"pool {s.Pool}: scrub interrupted (the daemon stopped) after {checkedText}, {bad} so far; the daemon resumes it when it starts",
            ScrubStatus.Failed => $"pool {s.Pool}: scrub failed after {checkedText}, {bad} so far: {s.Failure}; `edgeblock pool scrub {s.Pool}` resumes it",
            _ => $"pool {s.Pool}: scrub {s.State}: {checkedText}, {bad}",
        });
        foreach (ScrubError e in s.Errors ?? [])
            output.WriteLine($"  {s.Pool}/{e.Volume} LBAs {Num(e.FirstLba)}-{Num(e.LastLba)}: {e.What}");
    }

    /// <summary>12.3 s, 4m05s, 1h02m.</summary>
    internal static string Duration(double seconds)
    {
        if (seconds < 60) return seconds.ToString("0.0", CultureInfo.InvariantCulture) + " s";
        var t = TimeSpan.FromSeconds(Math.Round(seconds));
        return t.TotalHours >= 1 ? $"{(int)t.TotalHours}h{t.Minutes:00}m" : $"{t.Minutes}m{t.Seconds:00}s";
    }

    private static string Num(long n) => n.ToString(CultureInfo.InvariantCulture);
}
