using System.Globalization;
using System.Runtime.InteropServices;

namespace EdgeBlock.Cli;

/// <summary>CPU time of processes: another one from /proc/PID/stat (utime + stime), this one from getrusage.</summary>
internal static partial class ProcessCpu
{
    private const int ScClkTck = 2; // _SC_CLK_TCK on Linux

    /// <summary>Clock ticks per second of /proc/PID/stat's times (100 on Linux; getconf CLK_TCK).</summary>
    public static long ClockTicksPerSecond { get; } = ReadClockTicks();

    private static long ReadClockTicks()
    {
        try
        {
            long v = sysconf(ScClkTck);
            return v > 0 ? v : 100;
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            return 100;
        }
    }

    [LibraryImport("libc", EntryPoint = "sysconf")]
    private static partial long sysconf(int name);

    /// <summary>utime + stime of a process in clock ticks, or false when it is gone.</summary>
    public static bool TryReadTicks(int pid, out long ticks)
    {
        ticks = 0;
        string text;
        try
        {
            text = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
        return TryParseStat(text, out ticks);
    }

    /// <summary>Fields 14 (utime) and 15 (stime) of a /proc/PID/stat line; the command name (field 2) may hold spaces and parentheses.</summary>
    public static bool TryParseStat(string stat, out long ticks)
    {
        ticks = 0;
        int close = stat.LastIndexOf(')');
        if (close < 0) return false;
        var fields = stat[(close + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        // fields[0] is field 3 (state), so utime (14) is fields[11] and stime (15) fields[12].
        if (fields.Length < 13
            || !long.TryParse(fields[11], NumberStyles.None, CultureInfo.InvariantCulture, out long utime)
            || !long.TryParse(fields[12], NumberStyles.None, CultureInfo.InvariantCulture, out long stime))
            return false;
        ticks = utime + stime;
        return true;
    }

    /// <summary>This process's user + system CPU time.</summary>
    public static TimeSpan Self() => Environment.CpuUsage.TotalTime;
}
