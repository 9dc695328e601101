using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using EdgeBlock.Cli;

namespace EdgeBlock.Management.Tests;

/// <summary>The real `edgeblock serve` process, started the way the interop suite starts it (API socket = DATA-DIR/api.sock).</summary>
internal static class ServeProcess
{
    /// <summary>Starts serve on dataDir with a 16M memory default namespace and waits until its API answers; output lines go to log.</summary>
    public static async Task<Process> StartAsync(string dataDir, ConcurrentQueue<string>? log = null)
    {
        string cli = typeof(ManagementCommands).Assembly.Location;
        string socket = Path.Combine(dataDir, "api.sock");
        var psi = new ProcessStartInfo("dotnet")
        {
            ArgumentList = { cli, "serve", "--data-dir", dataDir, "--listen", "127.0.0.1:0", "--default-size", "16M", "--default-backend", "memory" },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
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

    public static async Task SignalAsync(Process process, string signal)
    {
        using var kill = Process.Start("kill", [$"-{signal}", process.Id.ToString(CultureInfo.InvariantCulture)])!;
        await kill.WaitForExitAsync();
        Assert.Equal(0, kill.ExitCode);
    }
}
