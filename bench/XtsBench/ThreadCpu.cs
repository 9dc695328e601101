using System.Runtime.InteropServices;

namespace EdgeBlock.Bench.Xts;

/// <summary>The calling thread's CPU time, so a rate can be taken per CPU-second as `openssl speed` does.</summary>
internal static partial class ThreadCpu
{
    private const int ClockThreadCpuTimeId = 3;

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, out TimeSpec time);

    public static double Seconds()
    {
        ClockGetTime(ClockThreadCpuTimeId, out TimeSpec t);
        return t.Seconds + t.Nanoseconds / 1e9;
    }
}
