using System.Diagnostics;

namespace EdgeBlock.Storage.Tests.Support;

/// <summary>Runs system tools (losetup, mount, stat) for fixtures and independent checks.</summary>
public static class Commands
{
    /// <summary>Runs a command and returns its standard output; throws with its standard error when it fails.</summary>
    public static string Run(string fileName, params string[] arguments)
    {
        (int exitCode, string output, string error) = TryRun(fileName, arguments);
        if (exitCode != 0)
        {
            throw new InvalidOperationException($"'{fileName} {string.Join(' ', arguments)}' exited with {exitCode}: {error.Trim()}");
        }
        return output;
    }

    public static (int ExitCode, string Output, string Error) TryRun(string fileName, params string[] arguments)
    {
        var startInfo = new ProcessStartInfo(fileName, arguments)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using Process process = Process.Start(startInfo)
            ?? throw new InvalidOperationException($"Could not start '{fileName}'.");
        Task<string> error = process.StandardError.ReadToEndAsync();
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output, error.Result);
    }

    /// <summary>Whether a command can be started and succeeds.</summary>
    public static bool Succeeds(string fileName, params string[] arguments)
    {
        try
        {
            return TryRun(fileName, arguments).ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false; // not installed
        }
    }
}
