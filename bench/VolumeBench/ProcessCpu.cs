using System.Runtime.InteropServices;

namespace EdgeBlock.Bench.Volume;

/// <summary>
/// CPU time of the whole process: the volume's work is spread over the caller, the io_uring ring thread, the
/// thread pool and RocksDB's threads, and all of it is what a volume costs per byte.
/// </summary>
internal static partial class ProcessCpu
{
    private const int ClockProcessCpuTimeId = 2;

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
        ClockGetTime(ClockProcessCpuTimeId, out TimeSpec t);
        return t.Seconds + t.Nanoseconds / 1e9;
    }
}
