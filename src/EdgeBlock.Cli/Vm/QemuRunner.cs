using System.Diagnostics;

namespace EdgeBlock.Cli.Vm;

/// <summary>
/// Runs QEMU until it exits and stops it on request: the first Ctrl-C/SIGTERM sends QMP system_powerdown
/// (ACPI) and waits the stop timeout, then QMP quit, then SIGKILL; a second Ctrl-C skips to quit.
/// </summary>
internal sealed class QemuRunner(string name, TextWriter output)
{
    /// <summary>How long QEMU gets to exit after QMP quit before it is killed.</summary>
    private static readonly TimeSpan QuitGrace = TimeSpan.FromSeconds(5);

    /// <summary>QEMU's exit code (0 after the guest powered off).</summary>
    public async Task<int> RunAsync(string qemu, IReadOnlyList<string> argv, string qmpSocket, TimeSpan stopTimeout, StopSignals signals)
    {
        // The setsid binary puts QEMU in its own session (it execs in place: a child of .NET is no group
        // leader, so the pid stays QEMU's): a Ctrl-C on the terminal reaches only us, and we stop QEMU cleanly.
        var start = new ProcessStartInfo(ExecutableSearch.Find("setsid") ?? "setsid") { UseShellExecute = false, RedirectStandardInput = true };
        start.ArgumentList.Add(qemu);
        foreach (string a in argv) start.ArgumentList.Add(a);
        using var process = Process.Start(start) ?? throw new InvalidOperationException("QEMU did not start");
        process.StandardInput.Close(); // QEMU reads no terminal input (as from /dev/null)
        output.WriteLine($"vm {name}: QEMU running (pid {process.Id}); Ctrl-C powers the guest off");
        using var qmp = new QmpSession(qmpSocket);
        var exited = process.WaitForExitAsync();
        if (await Task.WhenAny(exited, signals.First) != exited)
        {
            output.WriteLine($"vm {name}: asking the guest to power off (QMP system_powerdown); waiting up to {stopTimeout.TotalSeconds:0} s (Ctrl-C again: quit at once)");
            await qmp.TryAsync("system_powerdown", output);
            if (await Task.WhenAny(exited, Task.Delay(stopTimeout), signals.Second) != exited)
            {
                output.WriteLine($"vm {name}: stopping QEMU (QMP quit)");
                await qmp.TryAsync("quit", output);
                if (await Task.WhenAny(exited, Task.Delay(QuitGrace)) != exited)
                {
                    output.WriteLine($"vm {name}: QEMU still runs {QuitGrace.TotalSeconds:0} s after quit; killing it");
                    process.Kill();
                }
            }
        }
        await exited;
        output.WriteLine($"vm {name}: QEMU exited with code {process.ExitCode}");
        return process.ExitCode;
    }

    /// <summary>The QMP connection, made when first needed (only a stop request needs it).</summary>
    private sealed class QmpSession(string socket) : IDisposable
    {
        private QmpClient? _client;

        public async Task TryAsync(string command, TextWriter output)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            try
            {
                _client ??= await QmpClient.ConnectAsync(socket, timeout.Token);
                await _client.ExecuteAsync(command, timeout.Token);
            }
            catch (Exception e) when (e is QmpException or IOException or System.Net.Sockets.SocketException or OperationCanceledException or System.Text.Json.JsonException)
            {
                // quit often closes the connection before it answers; either way the next step follows.
                if (command != "quit") output.WriteLine($"  (QMP {command} on {socket}: {e.Message})");
            }
        }

        public void Dispose() => _client?.Dispose();
    }
}
