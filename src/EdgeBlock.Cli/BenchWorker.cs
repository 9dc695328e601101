using System.Runtime.CompilerServices;
using EdgeBlock.Nvme;

namespace EdgeBlock.Cli;

/// <summary>
/// One phase of a run, shared by all workers: which I/O comes next, whether it counts (the measured window),
/// and when to stop. Workers on one queue run one at a time on that queue's receive loop (inline completions);
/// workers on different queues run in parallel, so the shared counters are interlocked.
/// </summary>
internal sealed class BenchPhase
{
    private const int CursorStride = 16; // 128 bytes between per-queue cursors: no false sharing

    private readonly long[] _cursors;
    private readonly ulong _ioSlots;
    private long _issuedBytes;
    private long _windowStart = long.MaxValue, _windowEnd = long.MaxValue;
    private volatile bool _stopping;
    private Exception? _failure;

    public BenchPhase(string name, BenchPattern pattern, int readMixPercent, long rangeBytes, int ioBytes, int queues,
        bool onePass, long ioLimitBytes, bool verifyReads, bool patternWrites, TimeSpan pace = default)
    {
        Pace = pace;
        Name = name;
        Pattern = pattern;
        ReadMixPercent = readMixPercent;
        RangeBytes = rangeBytes;
        IoBytes = ioBytes;
        OnePass = onePass;
        IoLimitBytes = ioLimitBytes;
        VerifyReads = verifyReads;
        PatternWrites = patternWrites;
        _ioSlots = (ulong)(rangeBytes / ioBytes);
        _cursors = new long[(queues + 1) * CursorStride];
        // Sequential streams of several queues start spread over the range (as fio jobs with offset_increment).
        for (int q = 0; q < queues; q++) _cursors[(q + 1) * CursorStride] = (long)((ulong)q * _ioSlots / (ulong)queues) * ioBytes;
    }

    public string Name { get; }
    public BenchPattern Pattern { get; }
    public int ReadMixPercent { get; }
    public long RangeBytes { get; }
    public int IoBytes { get; }
    /// <summary>Sequential, once over the range with one shared cursor (the --verify fill and read-back).</summary>
    public bool OnePass { get; }
    public long IoLimitBytes { get; }
    public bool VerifyReads { get; }
    public bool PatternWrites { get; }
    /// <summary>Each worker's time between its commands (--rate-iops); zero: the next command goes at once.</summary>
    public TimeSpan Pace { get; }

    public bool Stopping => _stopping;
    public Exception? Failure => Volatile.Read(ref _failure);
    public long WindowStart => Volatile.Read(ref _windowStart);
    public long WindowEnd => Volatile.Read(ref _windowEnd);

    public void OpenWindow(long timestamp) => Volatile.Write(ref _windowStart, timestamp);
    public void CloseWindow(long timestamp) => Volatile.Write(ref _windowEnd, timestamp);
    public void Stop() => _stopping = true;

    public void Fail(Exception error)
    {
        Interlocked.CompareExchange(ref _failure, error, null);
        _stopping = true;
    }

    /// <summary>Picks the next I/O of a worker: its byte offset and direction. False when the phase has no more.</summary>
    public bool TryNext(BenchWorker worker, out long offset, out bool read)
    {
        offset = 0;
        read = Pattern switch
        {
            BenchPattern.RandRead or BenchPattern.Read => true,
            BenchPattern.RandWrite or BenchPattern.Write => false,
            _ => (int)(worker.NextRandom() % 100) < ReadMixPercent,
        };
        if (IoLimitBytes > 0 && Interlocked.Add(ref _issuedBytes, IoBytes) > IoLimitBytes) return false;
        if (OnePass)
        {
            offset = Interlocked.Add(ref _cursors[0], IoBytes) - IoBytes;
            return offset + IoBytes <= RangeBytes;
        }
        if (Pattern is BenchPattern.RandRead or BenchPattern.RandWrite or BenchPattern.RandRw)
        {
            ulong slot = Math.BigMul(worker.NextRandom(), _ioSlots, out _); // uniform in [0, slots): Lemire's multiply-shift
            offset = (long)slot * IoBytes;
            return true;
        }
        ref long cursor = ref _cursors[worker.Qid * CursorStride];
        long next = Interlocked.Add(ref cursor, IoBytes) - IoBytes; // uncontended but the first I/Os start on the caller's thread
        offset = (long)((ulong)next % (ulong)(_ioSlots * (ulong)IoBytes));
        return true;
    }
}

/// <summary>
/// One command slot of the load: a preallocated buffer, its own random stream, histograms and counters,
/// all touched by one thread at a time (the worker's queue's receive loop) so the hot path takes no locks.
/// </summary>
internal sealed class BenchWorker
{
    /// <summary>At most this many mismatch descriptions are kept (all are counted).</summary>
    public const int MaxMismatchDetails = 20;

    private ulong _random;
    private readonly ulong _seed;
    private Dictionary<ushort, long>? _errors;

    public BenchWorker(int index, ushort qid, Memory<byte> buffer, ulong seed)
    {
        Index = index;
        Qid = qid;
        Buffer = buffer;
        _seed = seed;
        _random = SplitMix(seed ^ (ulong)(index + 1) * 0xD1B54A32D192ED03UL);
    }

    public int Index { get; }
    public ushort Qid { get; }
    public Memory<byte> Buffer { get; }

    public LatencyHistogram ReadLatency { get; } = new();
    public LatencyHistogram WriteLatency { get; } = new();

    /// <summary>Commands completed in any phase (the progress line reads it).</summary>
    public long Completed;
    public long ReadIos, WriteIos, ReadBytes, WriteBytes;
    public long VerifiedBlocks, Mismatches;
    public List<string> MismatchDetails { get; } = [];
    public ulong Generation;

    /// <summary>Commands that ended with an NVMe error status, by CQE status field.</summary>
    public IReadOnlyDictionary<ushort, long> Errors => _errors ?? (IReadOnlyDictionary<ushort, long>)new Dictionary<ushort, long>();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong NextRandom()
    {
        // xorshift64*
        ulong x = _random;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        _random = x;
        return x * 0x2545F4914F6CDD1DUL;
    }

    private static ulong SplitMix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return z == 0 ? 1 : z;
    }

    public void AddError(NvmeStatus status)
    {
        _errors ??= [];
        ushort key = (ushort)(status.ToField() & 0x3FFE); // SCT and SC; DNR and More do not make another kind of error
        _errors[key] = _errors.GetValueOrDefault(key) + 1;
    }

    /// <summary>Checks every logical block of a completed read.</summary>
    public void VerifyRead(ReadOnlySpan<byte> data, int lbaSize, ulong slba)
    {
        for (int at = 0, i = 0; at < data.Length; at += lbaSize, i++)
        {
            ulong lba = slba + (ulong)i;
            var error = VerifyBlock.Check(data.Slice(at, lbaSize), lba, _seed, out ulong found);
            VerifiedBlocks++;
            if (error == VerifyError.None) continue;
            Mismatches++;
            if (MismatchDetails.Count < MaxMismatchDetails) MismatchDetails.Add(VerifyBlock.Describe(error, lba, found));
        }
    }

    public void ResetWindowCounters()
    {
        ReadIos = WriteIos = ReadBytes = WriteBytes = 0;
    }
}
