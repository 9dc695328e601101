using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Numerics;

namespace EdgeBlock.Storage;

/// <summary>
/// The daemon's one pool of I/O data buffers, under one byte budget (issue H). Buffers are page-aligned
/// anonymous mappings in power-of-two size classes from 4 KiB to the largest transfer; a command rents one
/// when its data must move and returns it when done. At the budget, <see cref="TryRent"/> says no and the
/// caller waits (<see cref="AddWaiter"/>): memory stops growing, I/O slows. Free buffers are kept for reuse
/// (no allocation in steady state) and given back to the kernel once unused for a trim interval, beyond a
/// small retained reserve, so RSS falls back after a burst.
/// Hot path: one CAS on the in-use count and one lock-free queue operation per rent and per return.
/// </summary>
public sealed class DataBufferPool : IDisposable
{
    public const int MinBufferBytes = 4096;
    /// <summary>How long a free buffer must go unused before it is unmapped.</summary>
    public static readonly TimeSpan DefaultTrimInterval = TimeSpan.FromSeconds(1);

    private readonly int _classes;
    private readonly ConcurrentQueue<AlignedBuffer>[] _free;
    private readonly int[] _freeCount;
    /// <summary>Fewest free buffers per class since the last trim: that many were not needed for a whole interval.</summary>
    private readonly int[] _lowWater;
    private readonly ConcurrentQueue<IBufferWaiter> _waiters = new();
    private readonly ITimer _trimTimer;
    private readonly TimeSpan _trimInterval;
    private int _waiterCount;
    private long _inUseBytes;
    private long _mappedBytes;
    private long _peakInUseBytes;
    private long _waits;
    private int _trimArmed;
    private volatile bool _disposed;

    /// <param name="budgetBytes">Bytes of buffers that may exist at once (in use plus kept free).</param>
    /// <param name="maxBufferBytes">The largest buffer (the largest transfer), a power of two.</param>
    /// <param name="retainBytes">Free buffers kept mapped however long they are unused (default: a sixteenth of the budget, at most 4 MiB).</param>
    public DataBufferPool(long budgetBytes, int maxBufferBytes = 128 * 1024, long? retainBytes = null,
        TimeProvider? time = null, TimeSpan? trimInterval = null)
    {
        if (maxBufferBytes < MinBufferBytes || !BitOperations.IsPow2(maxBufferBytes))
            throw new ArgumentOutOfRangeException(nameof(maxBufferBytes), maxBufferBytes, "a power of two of at least 4096");
        if (budgetBytes < 2L * maxBufferBytes)
            throw new ArgumentOutOfRangeException(nameof(budgetBytes), budgetBytes, $"at least two of the largest buffers ({2L * maxBufferBytes} bytes)");
        BudgetBytes = budgetBytes;
        MaxBufferBytes = maxBufferBytes;
        RetainBytes = retainBytes ?? Math.Min(budgetBytes / 16, 4L << 20);
        _classes = ClassOf(maxBufferBytes) + 1;
        _free = new ConcurrentQueue<AlignedBuffer>[_classes];
        for (int c = 0; c < _classes; c++) _free[c] = new ConcurrentQueue<AlignedBuffer>();
        _freeCount = new int[_classes];
        _lowWater = new int[_classes];
        _trimInterval = trimInterval ?? DefaultTrimInterval;
        _trimTimer = (time ?? TimeProvider.System).CreateTimer(static s => ((DataBufferPool)s!).OnTrimTimer(), this,
            Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>
    /// The budget when none is configured: a thirty-second of the machine's memory, at most 64 MiB (512 transfers of
    /// 128 KiB in flight: more than a drive or a 25 GbE link needs to stay busy at a few ms of latency) and at
    /// least 4 MiB.
    /// </summary>
    public static long DefaultBudgetBytes(long totalMemoryBytes) => Math.Clamp(totalMemoryBytes / 32, 4L << 20, 64L << 20);

    /// <summary>For transports built without the daemon's pool (tests, tools): the default budget of this machine.</summary>
    public static DataBufferPool Shared => s_shared.Value;
    private static readonly Lazy<DataBufferPool> s_shared = new(() => new DataBufferPool(DefaultBudgetBytes(GC.GetGCMemoryInfo().TotalAvailableMemoryBytes)));

    public long BudgetBytes { get; }
    public int MaxBufferBytes { get; }
    public long RetainBytes { get; }
    /// <summary>Bytes rented out now (whole size classes).</summary>
    public long InUseBytes => Volatile.Read(ref _inUseBytes);
    /// <summary>Bytes mapped now: in use plus kept free. Never above the budget.</summary>
    public long MappedBytes => Volatile.Read(ref _mappedBytes);
    public long PeakInUseBytes => Volatile.Read(ref _peakInUseBytes);
    /// <summary>Times a renter had to wait for the budget.</summary>
    public long Waits => Volatile.Read(ref _waits);
    /// <summary>Renters waiting now.</summary>
    public int WaitersNow => Volatile.Read(ref _waiterCount);

    /// <summary>The bytes a buffer for <paramref name="length"/> bytes takes from the budget.</summary>
    public static int ClassBytes(int length) => MinBufferBytes << ClassOf(length);

    private static int ClassOf(int length) => length <= MinBufferBytes ? 0 : BitOperations.Log2((uint)length - 1) + 1 - 12;

    /// <summary>
    /// Rents a buffer of at least <paramref name="length"/> bytes when the budget allows it with
    /// <paramref name="keepFreeBytes"/> still unused (renters that hold the buffer until a peer acts leave room
    /// for those that do not, so the pool cannot deadlock). False: nothing was taken; retry after
    /// <see cref="AddWaiter"/>. The buffer's contents are whatever its last user left.
    /// </summary>
    public bool TryRent(int length, long keepFreeBytes, [NotNullWhen(true)] out AlignedBuffer? buffer)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, MaxBufferBytes);
        int c = ClassOf(length);
        long size = MinBufferBytes << c;
        long limit = BudgetBytes - keepFreeBytes;
        long inUse = Volatile.Read(ref _inUseBytes);
        while (true)
        {
            if (inUse + size > limit)
            {
                buffer = null;
                return false;
            }
            long seen = Interlocked.CompareExchange(ref _inUseBytes, inUse + size, inUse);
            if (seen == inUse) break;
            inUse = seen;
        }
        if (inUse + size > Volatile.Read(ref _peakInUseBytes)) RaisePeak(inUse + size);
        buffer = TakeFree(c) ?? Map(c);
        return true;
    }

    /// <summary>Gives a rented buffer back; wakes those waiting for the budget.</summary>
    public void Return(AlignedBuffer buffer)
    {
        int c = ClassOf(buffer.Length);
        Debug.Assert(buffer.Length == MinBufferBytes << c, "not a buffer of this pool");
        if (_disposed)
        {
            Unmap(buffer);
        }
        else
        {
            _free[c].Enqueue(buffer);
            Interlocked.Increment(ref _freeCount[c]);
        }
        Interlocked.Add(ref _inUseBytes, -buffer.Length);
        if (Volatile.Read(ref _trimArmed) == 0 && Interlocked.CompareExchange(ref _trimArmed, 1, 0) == 0)
            _trimTimer.Change(_trimInterval, Timeout.InfiniteTimeSpan);
        if (Volatile.Read(ref _waiterCount) > 0) WakeWaiters();
    }

    /// <summary>
    /// Asks to be told when buffers come back. Call after a failed <see cref="TryRent"/>, then try once more:
    /// a return between the two would otherwise go unnoticed.
    /// </summary>
    public void AddWaiter(IBufferWaiter waiter)
    {
        Interlocked.Increment(ref _waits);
        _waiters.Enqueue(waiter);
        Interlocked.Increment(ref _waiterCount);
    }

    private void WakeWaiters()
    {
        // Everyone waiting retries: a returned 128 KiB buffer may serve several 4 KiB renters, and a waiter
        // that still does not fit adds itself again.
        int n = Volatile.Read(ref _waiterCount);
        while (n-- > 0 && _waiters.TryDequeue(out var waiter))
        {
            Interlocked.Decrement(ref _waiterCount);
            waiter.OnBuffersReturned();
        }
    }

    private AlignedBuffer? TakeFree(int c)
    {
        if (!_free[c].TryDequeue(out var buffer)) return null;
        int left = Interlocked.Decrement(ref _freeCount[c]);
        if (left < Volatile.Read(ref _lowWater[c])) Volatile.Write(ref _lowWater[c], left);
        return buffer;
    }

    /// <summary>Maps a new buffer, first unmapping free ones of other sizes if the budget needs the room.</summary>
    private AlignedBuffer Map(int c)
    {
        long size = MinBufferBytes << c;
        var spin = new SpinWait();
        while (true)
        {
            long mapped = Volatile.Read(ref _mappedBytes);
            if (mapped + size <= BudgetBytes)
            {
                if (Interlocked.CompareExchange(ref _mappedBytes, mapped + size, mapped) == mapped)
                    return AlignedBuffer.Map((int)size);
                continue;
            }
            // Our rent is counted in use, so mapped minus free is at most the budget minus this buffer: evicting
            // free buffers always makes room, unless another thread is between unmapping one and counting it.
            if (!EvictOne()) spin.SpinOnce();
        }
    }

    private bool EvictOne()
    {
        for (int c = _classes - 1; c >= 0; c--)
        {
            var buffer = TakeFree(c);
            if (buffer == null) continue;
            Unmap(buffer);
            return true;
        }
        return false;
    }

    private void Unmap(AlignedBuffer buffer)
    {
        int length = buffer.Length;
        ((IDisposable)buffer).Dispose();
        Interlocked.Add(ref _mappedBytes, -length);
    }

    private void RaisePeak(long value)
    {
        long peak = Volatile.Read(ref _peakInUseBytes);
        while (value > peak)
        {
            long seen = Interlocked.CompareExchange(ref _peakInUseBytes, value, peak);
            if (seen == peak) return;
            peak = seen;
        }
    }

    /// <summary>
    /// Unmaps the free buffers no renter needed since the last trim, keeping up to <see cref="RetainBytes"/>
    /// of free buffers (the smallest sizes first: they serve the most commands). Runs by itself one interval
    /// after buffers were returned, and again while free buffers are left above the reserve; idle, it is off.
    /// </summary>
    public void Trim()
    {
        long retained = 0;
        for (int c = 0; c < _classes; c++)
        {
            long size = MinBufferBytes << c;
            int free = Math.Max(0, Volatile.Read(ref _freeCount[c]));
            int unused = Math.Clamp(Volatile.Read(ref _lowWater[c]), 0, free);
            retained += (free - unused) * size;
            for (int i = 0; i < unused; i++)
            {
                if (retained + size <= RetainBytes) { retained += size; continue; }
                var buffer = TakeFree(c);
                if (buffer == null) break;
                Unmap(buffer);
            }
            Volatile.Write(ref _lowWater[c], Math.Max(0, Volatile.Read(ref _freeCount[c])));
        }
    }

    private void OnTrimTimer()
    {
        if (_disposed) return;
        Trim();
        Volatile.Write(ref _trimArmed, 0);
        // Free buffers that were in use during this interval may be idle in the next one: look again.
        if (MappedBytes - InUseBytes > RetainBytes && Interlocked.CompareExchange(ref _trimArmed, 1, 0) == 0)
            _trimTimer.Change(_trimInterval, Timeout.InfiniteTimeSpan);
    }

    /// <summary>Unmaps the free buffers; buffers still rented are unmapped when they come back.</summary>
    public void Dispose()
    {
        _disposed = true;
        _trimTimer.Dispose();
        for (int c = 0; c < _classes; c++)
            while (TakeFree(c) is { } buffer) Unmap(buffer);
    }
}
