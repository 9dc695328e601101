using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using EdgeBlock.Storage;
using EdgeBlock.Volumes;

[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

// bench/VolumeBench DIR DATAFILE [MiB] [QD] [rand4k SECONDS]: the data path of chunk volumes in one process, without a transport.
// A pool on a file drive in DIR (io_uring, O_DIRECT, as the daemon opens it), one volume per kind; each is written
// sequentially in 128 KiB writes (QD commands in flight) with DATAFILE's bytes repeated, flushed, then read back
// and compared. Prints MB (10^6 bytes) per CPU-second of the whole process and per wall second, so they can be
// set against `lz4 -b1` and `openssl speed` (bench/volume.sh does). The thin (extent) volume is the baseline: the
// same writes with no data service, so what a service adds per byte is the difference.
// With `rand4k SECONDS`, each volume is then overwritten by 4 KiB writes at random places (QD in flight) for that
// long, and the figure is IOPS and CPU microseconds per write: the partial-chunk write path of issue D's goals.
namespace EdgeBlock.Bench.Volume;

internal static class Program
{
    private const int Io = 128 * 1024;
    private const long WarmUp = 32 << 20;

    private static async Task<int> Main(string[] args)
    {
        if (args.Length < 2)
        {
            Console.Error.WriteLine("usage: VolumeBench DIR DATAFILE [MiB] [QD] [rand4k SECONDS]");
            return 2;
        }
        string dir = Directory.CreateDirectory(args[0]).FullName;
        byte[] data = File.ReadAllBytes(args[1]);
        long mib = args.Length > 2 ? long.Parse(args[2]) : 512;
        int qd = args.Length > 3 ? int.Parse(args[3]) : 8;
        long bytes = mib << 20;
        double randomSeconds = args.Length > 5 && args[4] == "rand4k" ? double.Parse(args[5]) : 0;
        if (data.Length < Io || data.Length % Io != 0) throw new ArgumentException($"{args[1]}: a multiple of {Io} bytes is needed");

        string key = Path.Combine(dir, "volume.key");
        File.WriteAllBytes(key, RandomNumberGenerator.GetBytes(VolumeKeys.KeySize));
        File.SetUnixFileMode(key, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var kinds = new (string Name, VolumeFeatures Features)[]
        {
            ("thin", VolumeFeatures.None),
            ("checksum", new VolumeFeatures(Checksum: true)),
            ("lz4", new VolumeFeatures(VolumeCompression.Lz4)),
            ("aes-xts", new VolumeFeatures(Encrypted: true)),
            ("lz4-checksum-aes-xts", new VolumeFeatures(VolumeCompression.Lz4, Checksum: true, Encrypted: true)),
        };
        // Room for every volume written once, and for redirect-on-write to move.
        long driveBytes = (kinds.Length + 1) * bytes + (64L << 20);
        await using Pool pool = await Pool.CreateAsync("bench", Path.Combine(dir, "meta"), [new PoolDriveSpec(Path.Combine(dir, "drive0.img"), driveBytes)]);
        Console.WriteLine($"volume data path, {mib} MiB per volume, {Io / 1024} KiB I/O, QD {qd}, {Environment.ProcessorCount} CPUs; MB/s = 10^6 bytes/s");
        Console.WriteLine($"{"volume",-22} {"write MB/CPU-s",14} {"write MB/s",10} {"read MB/CPU-s",13} {"read MB/s",9} {"stored",8}");
        // VOLUMEBENCH_KINDS=checksum,lz4 runs only those (e.g. under a profiler).
        string[]? only = Environment.GetEnvironmentVariable("VOLUMEBENCH_KINDS")?.Split(',');
        foreach (var (name, features) in kinds.Where(k => only is null || only.Contains(k.Name)))
        {
            VolumeKeySource? source = features.Encrypted ? new VolumeKeySource(File: key) : null;
            // Warm-up on a volume of its own (the JIT compiles each path's hot code on its first calls), then measured.
            await pool.CreateVolumeAsync(name + "-warm", WarmUp, features: features, key: source);
            IBlockDevice warm = pool.OpenVolume(name + "-warm");
            await RunAsync(warm, data, WarmUp, qd, write: true);
            await RunAsync(warm, data, WarmUp, qd, write: false);
            await warm.DisposeAsync();
            await pool.DeleteVolumeAsync(name + "-warm");
            await pool.CreateVolumeAsync(name, bytes, features: features, key: source);
            IBlockDevice device = pool.OpenVolume(name);
            try
            {
                var write = await RunAsync(device, data, bytes, qd, write: true);
                var read = await RunAsync(device, data, bytes, qd, write: false);
                VolumeInfo info = pool.ListVolumes().Single(v => v.Name == name);
                Console.WriteLine($"{name,-22} {write.PerCpu,14:F0} {write.PerWall,10:F0} {read.PerCpu,13:F0} {read.PerWall,9:F0} {StoredText(info),8}");
                if (randomSeconds > 0)
                {
                    var random = await RandomWritesAsync(device, data, bytes, qd, TimeSpan.FromSeconds(randomSeconds));
                    Console.WriteLine($"{name + " rand4k",-22} {random.Iops,10:F0} IOPS {random.CpuMicros,8:F2} CPU us/IO");
                }
            }
            finally
            {
                await device.DisposeAsync();
            }
        }
        return 0;
    }

    private static string StoredText(VolumeInfo info) => $"{(info.Features?.UsesChunks == true ? info.PhysicalBytes : info.AllocatedBytes) >> 20} MiB";

    /// <summary>Sequential writes (then a flush) or reads of the whole volume, qd at a time; reads are compared with what was written.</summary>
    private static async Task<(double PerCpu, double PerWall)> RunAsync(IBlockDevice device, byte[] data, long bytes, int qd, bool write)
    {
        long next = 0;
        var buffers = Enumerable.Range(0, qd).Select(_ => new AlignedBuffer(Io)).ToArray();
        try
        {
            double cpu0 = CpuClock.Process();
            var wall = Stopwatch.StartNew();
            async Task Worker(AlignedBuffer buffer)
            {
                while (true)
                {
                    long offset = Interlocked.Add(ref next, Io) - Io;
                    if (offset >= bytes) return;
                    ReadOnlyMemory<byte> expected = data.AsMemory((int)(offset % data.Length), Io);
                    if (write)
                    {
                        expected.CopyTo(buffer.Memory);
                        Check(await device.WriteAsync(offset / device.BlockSize, buffer.Memory, fua: false), offset);
                    }
                    else
                    {
                        Check(await device.ReadAsync(offset / device.BlockSize, buffer.Memory), offset);
                        if (!buffer.Span.SequenceEqual(expected.Span)) throw new InvalidDataException($"read at {offset} differs from what was written");
                    }
                }
            }
            await Task.WhenAll(buffers.Select(b => Task.Run(() => Worker(b))));
            if (write) Check(await device.FlushAsync(), 0);
            double cpu = CpuClock.Process() - cpu0;
            double seconds = wall.Elapsed.TotalSeconds;
            return (bytes / 1e6 / cpu, bytes / 1e6 / seconds);
        }
        finally
        {
            foreach (AlignedBuffer b in buffers) ((IDisposable)b).Dispose();
        }
    }

    /// <summary>4 KiB writes at random 4 KiB-aligned places of an already written volume, qd at a time, for a while.</summary>
    private static async Task<(double Iops, double CpuMicros)> RandomWritesAsync(IBlockDevice device, byte[] data, long bytes, int qd, TimeSpan duration)
    {
        const int Small = 4096;
        var buffers = Enumerable.Range(0, qd).Select(_ => new AlignedBuffer(Small)).ToArray();
        long done = 0;
        try
        {
            double cpu0 = CpuClock.Process();
            var wall = Stopwatch.StartNew();
            async Task Worker(AlignedBuffer buffer, int seed)
            {
                var random = new Random(seed);
                while (wall.Elapsed < duration)
                {
                    long offset = random.NextInt64(bytes / Small) * Small;
                    data.AsSpan((int)(offset % data.Length), Small).CopyTo(buffer.Span);
                    Check(await device.WriteAsync(offset / device.BlockSize, buffer.Memory, fua: false), offset);
                    Interlocked.Increment(ref done);
                }
            }
            await Task.WhenAll(buffers.Select((b, i) => Task.Run(() => Worker(b, i + 1))));
            Check(await device.FlushAsync(), 0);
            double cpu = CpuClock.Process() - cpu0;
            return (done / wall.Elapsed.TotalSeconds, cpu * 1e6 / done);
        }
        finally
        {
            foreach (AlignedBuffer b in buffers) ((IDisposable)b).Dispose();
        }
    }

    private static void Check(BlockStatus status, long offset)
    {
        if (status != BlockStatus.Success) throw new IOException($"I/O at byte {offset} failed: {status}");
    }
}
