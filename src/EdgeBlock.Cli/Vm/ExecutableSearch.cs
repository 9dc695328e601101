namespace EdgeBlock.Cli.Vm;

/// <summary>Finds a program the way a shell does: a path as given, else the first match on PATH.</summary>
internal static class ExecutableSearch
{
    public static string? Find(string program)
    {
        if (program.Contains('/')) return File.Exists(program) ? Path.GetFullPath(program) : null;
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            string candidate = Path.Combine(dir, program);
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }
}
