using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using EdgeBlock.Bench;
using EdgeBlock.Bench.Xts;
using EdgeBlock.Volumes;

// AES-256-XTS candidates against OpenSSL's own loop, single thread, in place, 4 KiB data units.
// MB/s = 10^6 bytes/s (`openssl speed` reports thousands of bytes/s). Every rate is given per
// second of the measuring thread's CPU time, as `openssl speed` divides by its CPU time unless
// given -elapsed; wall-clock rates are printed beside them. The candidates and the anchor take
// turns in short turns, ROUNDS times, so machine noise lands on all of them alike; the ratio
// column is the median of the per-round ratios to the anchor, the best figures are the best
// round's. Usage:
//   dotnet bench/XtsBench/bin/Release/net10.0/XtsBench.dll [SECONDS per turn, default 0.25] [ROUNDS, default 25]
double seconds = args.Length > 0 ? double.Parse(args[0], CultureInfo.InvariantCulture) : 0.25;
int rounds = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 25;
byte[] key = RandomNumberGenerator.GetBytes(XtsAes.KeySize);

using var xts = new XtsAes(key);
using var anchorEncrypt = new OpenSslAnchor(key, encrypt: true);
using var anchorDecrypt = new OpenSslAnchor(key, encrypt: false);
using var oneShot = new ManagedXtsAes(key, EcbCore.OneShot);
using var transform = new ManagedXtsAes(key, EcbCore.Transform);
var candidates = new (string Name, Action<byte[], ulong> Encrypt, Action<byte[], ulong> Decrypt)[]
{
    ("(a) XtsAes: OpenSSL XTS, provider functions", (b, u) => xts.Encrypt(b, b, u), (b, u) => xts.Decrypt(b, b, u)),
    ("(a) via EVP: + EVP_CipherInit_ex(iv) per unit", (b, u) => anchorEncrypt.RunWithInit(b, u), (b, u) => anchorDecrypt.RunWithInit(b, u)),
    ("(b) managed XTS over Aes.EncryptEcb", (b, u) => oneShot.Encrypt(b, b, u), (b, u) => oneShot.Decrypt(b, b, u)),
    ("(b') managed XTS over reused ECB transforms", (b, u) => transform.Encrypt(b, b, u), (b, u) => transform.Decrypt(b, b, u)),
};

// The candidates must agree before their speeds mean anything.
byte[] sample = RandomNumberGenerator.GetBytes(32 * 4096);
byte[] expected = (byte[])sample.Clone();
candidates[0].Encrypt(expected, 1234);
foreach (var c in candidates)
{
    byte[] copy = (byte[])sample.Clone();
    c.Encrypt(copy, 1234);
    if (!copy.AsSpan().SequenceEqual(expected)) throw new InvalidOperationException($"{c.Name} disagrees with OpenSSL");
    c.Decrypt(copy, 1234);
    if (!copy.AsSpan().SequenceEqual(sample)) throw new InvalidOperationException($"{c.Name} does not round-trip");
}

Console.WriteLine($"{Environment.ProcessorCount} CPUs, .NET {Environment.Version}, {rounds} rounds of {seconds} s per turn");
Console.WriteLine($"{"candidate",-50} {"call",7} {"enc MB/CPU-s",12} {"(wall)",7} {"ratio",6} {"dec MB/CPU-s",12} {"(wall)",7} {"ratio",6} {"B/call",7}");
foreach (int size in new[] { 4096, 128 * 1024 })
{
    byte[] buffer = RandomNumberGenerator.GetBytes(size);
    var anchor = ("anchor: openssl speed's loop (EVP_CipherUpdate)", (Action<byte[], ulong>)((b, _) => anchorEncrypt.Run(b)), (Action<byte[], ulong>)((b, _) => anchorDecrypt.Run(b)));
    var all = candidates.Prepend(anchor).ToArray();
    var enc = new Rate[all.Length, rounds];
    var dec = new Rate[all.Length, rounds];
    foreach (var c in all)
    {
        Measure(c.Item2, buffer, 0.2); // warm up, let tiering finish
        Measure(c.Item3, buffer, 0.2);
    }
    for (int r = 0; r < rounds; r++)
    {
        for (int i = 0; i < all.Length; i++)
        {
            enc[i, r] = Measure(all[i].Item2, buffer, seconds);
            dec[i, r] = Measure(all[i].Item3, buffer, seconds);
        }
    }
    for (int i = 0; i < all.Length; i++)
    {
        Console.WriteLine($"{all[i].Item1,-50} {size / 1024 + " KiB",7} " +
            $"{Best(enc, i, x => x.Cpu),12:F0} {Best(enc, i, x => x.Wall),7:F0} {MedianRatio(enc, i),6:P0} " +
            $"{Best(dec, i, x => x.Cpu),12:F0} {Best(dec, i, x => x.Wall),7:F0} {MedianRatio(dec, i),6:P0} {enc[i, 0].AllocPerCall,7:F0}");
    }
}

// Two threads at once, one per core: each on its own anchor context, each re-initialising its
// own EVP context per unit, and both on one XtsAes (its context pool shared). Per core = bytes / the
// two threads' summed CPU time; the wall aggregate needs both cores idle to mean anything.
Console.WriteLine("two threads, 4 KiB calls, 3 s each, per-core MB/CPU-s (wall aggregate MB/s):");
for (int round = 0; round < 3; round++)
{
    using var e0 = new OpenSslAnchor(key, true);
    using var e1 = new OpenSslAnchor(key, true);
    var anchors = new[] { e0, e1 };
    string line = "";
    foreach (var (name, run) in new (string, Action<int, byte[], ulong>)[]
    {
        ("anchor", (w, b, u) => anchors[w].Run(b)),
        ("EVP + init per unit", (w, b, u) => anchors[w].RunWithInit(b, u)),
        ("(a) one XtsAes", (w, b, u) => xts.Encrypt(b, b, u)),
    })
    {
        (double perCore, double wall) = TwoThreads(run);
        line += $"  {name} {perCore:F0} ({wall:F0})";
    }
    Console.WriteLine(line);
}

static (double PerCore, double Wall) TwoThreads(Action<int, byte[], ulong> run)
{
    var sw = Stopwatch.StartNew();
    long bytes = 0;
    double cpu = 0;
    object gate = new();
    Parallel.For(0, 2, new ParallelOptions { MaxDegreeOfParallelism = 2 }, worker =>
    {
        byte[] buffer = new byte[4096];
        long done = 0;
        ulong unit = (ulong)worker << 40;
        double cpu0 = CpuClock.Thread();
        while (sw.Elapsed.TotalSeconds < 3)
        {
            for (int i = 0; i < 1000; i++) run(worker, buffer, unit++);
            done += 1000 * 4096;
        }
        double used = CpuClock.Thread() - cpu0;
        lock (gate) cpu += used;
        Interlocked.Add(ref bytes, done);
    });
    return (bytes / cpu / 1e6, bytes / sw.Elapsed.TotalSeconds / 1e6);
}

static Rate Measure(Action<byte[], ulong> run, byte[] buffer, double seconds)
{
    long calls = 0;
    long allocated = GC.GetAllocatedBytesForCurrentThread();
    double cpu0 = CpuClock.Thread();
    var sw = Stopwatch.StartNew();
    while (sw.Elapsed.TotalSeconds < seconds)
    {
        for (int i = 0; i < 64; i++) run(buffer, (ulong)(calls + i));
        calls += 64;
    }
    double wall = sw.Elapsed.TotalSeconds, cpu = CpuClock.Thread() - cpu0;
    double bytes = calls * (double)buffer.Length;
    return new Rate(bytes / wall / 1e6, bytes / cpu / 1e6, (GC.GetAllocatedBytesForCurrentThread() - allocated) / (double)calls);
}

static double Best(Rate[,] rates, int i, Func<Rate, double> pick) =>
    Enumerable.Range(0, rates.GetLength(1)).Max(r => pick(rates[i, r]));

static double MedianRatio(Rate[,] rates, int i)
{
    double[] ratios = Enumerable.Range(0, rates.GetLength(1)).Select(r => rates[i, r].Cpu / rates[0, r].Cpu).Order().ToArray();
    return ratios[ratios.Length / 2];
}

readonly record struct Rate(double Wall, double Cpu, double AllocPerCall);
