using System.Runtime.InteropServices;

namespace EdgeBlock.Bench;

/// <summary>
/// CPU time from clock_gettime, so a rate can be taken per CPU-second as `openssl speed` does: of the calling thread
/// (a loop measured alone), or of the whole process (a volume's work is spread over the caller, the io_uring ring
/// thread, the thread pool and RocksDB's threads, and all of it is what the volume costs). Linked into each bench tool.
/// </summary>
internal static partial class CpuClock
{
    private const int ProcessCpuTimeId = 2, ThreadCpuTimeId = 3;

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, out TimeSpec time);

    /// <summary>CPU seconds of the calling thread.</summary>
    public static double Thread() => Read(ThreadCpuTimeId);

    /// <summary>CPU seconds of every thread of the process.</summary>
    public static double Process() => Read(ProcessCpuTimeId);

    private static double Read(int clock)
    {
        ClockGetTime(clock, out TimeSpec t);
        return t.Seconds + t.Nanoseconds / 1e9;
    }
}
