using System.Text.RegularExpressions;

namespace EdgeBlock.Cli.Tests;

/// <summary>
/// The CLI's management commands are clients of the API: they compile against EdgeBlock.Api only. The project
/// references the daemon for `serve` and `pool check --offline`, which run it in-process; only the files named
/// here may use it, so a management command that reaches into the daemon fails this test, not a review.
/// </summary>
public partial class CliBoundaryTests
{
    private static readonly string[] InProcessFiles = ["ServeCommand.cs", "InProcess.cs"];

    [GeneratedRegex(@"\bEdgeBlock\.(Daemon|Volumes|Target|Storage|Transports)\b")]
    private static partial Regex DaemonSide();

    private static string CliSource()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir != null && !File.Exists(Path.Combine(dir.FullName, "EdgeBlock.sln"))) dir = dir.Parent;
        Assert.NotNull(dir);
        return Path.Combine(dir.FullName, "src", "EdgeBlock.Cli");
    }

    [Fact]
    public void Only_serve_and_the_offline_pool_check_use_the_daemon_every_other_command_file_uses_the_api_alone()
    {
        string root = CliSource();
        var files = Directory.EnumerateFiles(root, "*.cs", SearchOption.AllDirectories)
            .Where(f => Path.GetRelativePath(root, f).Split(Path.DirectorySeparatorChar)[0] is not ("obj" or "bin"))
            .ToList();
        Assert.Contains(files, f => Path.GetFileName(f) == "ManagementCommands.cs"); // the scan sees the commands
        var offenders = files
            .Where(f => !InProcessFiles.Contains(Path.GetFileName(f)))
            .SelectMany(f => File.ReadLines(f).Select((line, i) => (File: Path.GetRelativePath(root, f), Line: i + 1, Text: line)))
            .Where(l => DaemonSide().IsMatch(l.Text))
            .Select(l => $"{l.File}:{l.Line}: {l.Text.Trim()}")
            .ToList();
        Assert.True(offenders.Count == 0, "API clients must not use the daemon's layers (use EdgeBlock.Api, or move in-process code to InProcess.cs):\n" + string.Join("\n", offenders));
    }

    [Fact]
    public void The_project_brings_no_daemon_namespace_into_every_file()
    {
        string project = File.ReadAllText(Path.Combine(CliSource(), "EdgeBlock.Cli.csproj"));
        Assert.DoesNotMatch(@"<Using\s+Include=""EdgeBlock\.(Daemon|Volumes|Target|Storage|Transports)", project);
        Assert.Contains("EdgeBlock.Api.csproj", project);
    }
}
