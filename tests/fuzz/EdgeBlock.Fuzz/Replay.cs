namespace EdgeBlock.Fuzz;

/// <summary>Runs saved inputs outside afl-fuzz and says which ones fail, with the exception.</summary>
internal static class Replay
{
    public static int Run(FuzzTarget target, string[] paths)
    {
        var files = paths.SelectMany<string, string>(p => Directory.Exists(p)
            ? Directory.EnumerateFiles(p).Where(f => !Path.GetFileName(f).StartsWith('.') && Path.GetFileName(f) != "README.txt").Order()
            : [p]).ToList();
        int failed = 0;
        foreach (string file in files)
        {
            byte[] bytes = File.ReadAllBytes(file);
            try
            {
                FuzzTargets.RunOne(target, bytes.AsSpan(0, Math.Min(bytes.Length, FuzzTargets.MaxInputBytes)));
            }
            catch (Exception ex)
            {
                failed++;
                Console.WriteLine($"FAIL {file}: {ex}");
            }
        }
        Console.WriteLine($"{files.Count - failed} of {files.Count} inputs ran clean");
        return failed == 0 ? 0 : 1;
    }
}
