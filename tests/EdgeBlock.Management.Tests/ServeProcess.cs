using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using EdgeBlock.Cli;

namespace EdgeBlock.Management.Tests;

/// <summary>The real `edgeblock serve` process, started the way the interop suite starts it (API socket = DATA-DIR/api.sock).</summary>
internal static class ServeProcess
{
    /// <summary>
    /// Starts serve on dataDir with a 16M memory default namespace and waits until its API answers; output lines go to log.
    /// <paramref name="shellSetup"/> (e.g. <c>trap '' HUP INT TERM</c> as a script's background job or <c>nohup</c>
    /// leaves signals, or <c>umask 000</c>) runs in the shell that then execs serve, so serve inherits that state.
    /// </summary>
    public static async Task<Process> StartAsync(string dataDir, ConcurrentQueue<string>? log = null, string? shellSetup = null)
    {
        string cli = typeof(ManagementCommands).Assembly.Location;
        string socket = Path.Combine(dataDir, "api.sock");
        string[] serve = ["dotnet", cli, "serve", "--data-dir", dataDir, "--listen", "127.0.0.1:0", "--default-size", "16M", "--default-backend", "memory"];
        // exec keeps the pid: the signals the test sends go to serve itself.
        string[] argv = shellSetup == null ? serve : ["bash", "-c", $"{shellSetup}; exec \"$@\"", "serve", .. serve];
        var psi = new ProcessStartInfo(argv[0]) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in argv[1..]) psi.ArgumentList.Add(a);
        psi.Environment.Remove("EDGEBLOCK_API_SOCKET");
        var process = Process.Start(psi)!;
        process.OutputDataReceived += (_, e) => { if (e.Data != null) log?.Enqueue(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data != null) log?.Enqueue(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(30))
        {
            if (process.HasExited) throw new Xunit.Sdk.XunitException($"edgeblock serve exited with {process.ExitCode}:\n{string.Join('\n', log ?? [])}");
            if (File.Exists(socket) && (await TestDaemon.RunCliAsync("status", "--api-socket", socket)).ExitCode == 0) return process;
            await Task.Delay(100);
        }
        process.Kill();
        throw new Xunit.Sdk.XunitException("edgeblock serve did not answer on its API socket within 30 s");
    }

    /// <summary>The signals a process ignores, from the SigIgn mask in /proc/PID/status.</summary>
    public static ulong IgnoredSignalMask(Process process)
    {
        string line = File.ReadLines($"/proc/{process.Id}/status").Single(l => l.StartsWith("SigIgn:", StringComparison.Ordinal));
        return ulong.Parse(line["SigIgn:".Length..].Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
    }

    public static async Task SignalAsync(Process process, string signal)
    {
        using var kill = Process.Start("kill", [$"-{signal}", process.Id.ToString(CultureInfo.InvariantCulture)])!;
        await kill.WaitForExitAsync();
        Assert.Equal(0, kill.ExitCode);
    }
}
