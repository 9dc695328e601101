using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;
using EdgeBlock.Threading;
using Microsoft.Win32.SafeHandles;

namespace EdgeBlock.Storage;

/// <summary>
/// Reads and writes of a <see cref="FileBlockDevice"/>'s O_DIRECT descriptor through io_uring, instead of a
/// blocking pread/pwrite on a thread-pool thread per request. One dedicated ring thread does all the ring's
/// work: callers queue requests and wake it (an eventfd the ring itself reads) only when it sleeps; it puts
/// whatever is queued into SQEs, submits them and waits for completions in one io_uring_enter, so requests
/// that arrive together (a batch of capsules) share a system call and the block layer's plug, and the
/// kernel's completion work (task work of the submitting thread) runs on this thread instead of
/// interrupting a socket thread. Callers' continuations run on the ring thread (no thread hop per completion);
/// when one of them takes longer than a millisecond (it blocks, or its thread was merely preempted), they go to
/// the thread pool for a back-off period of 100 ms, then run on the ring thread again. A slow continuation
/// soon after the ring went back inline doubles the back-off (up to a second); one after a fast period starts
/// again at 100 ms. So a continuation that blocks stalls the ring at most once per back-off period, and one
/// preemption does not cost a thread hop per completion for the device's lifetime. A continuation on the ring
/// thread that issues its next request (a chunk volume's write after its read) queues it like any caller, and the
/// ring submits it when the continuation returns. Should the continuation instead wait for that request
/// synchronously, the ring thread cannot come back to submit it: a watchdog timer, armed while such requests
/// wait, hands them to the thread pool once the continuation has run for <see cref="RescueAfter"/>, so the wait
/// ends and the ring cannot deadlock. The descriptor is a registered file: the ring holds its own reference, so closing the
/// device cannot redirect a request in flight. Requests the ring cannot take (all its operations busy, an
/// unaligned buffer) and odd completions (short transfers, EAGAIN) go the thread-pool way instead.
/// </summary>
internal sealed unsafe class UringFileIo : IDisposable
{
    private const uint SqEntries = 256;
    /// <summary>Requests in flight at most (one completion slot each); beyond it the thread pool serves.</summary>
    internal const uint MaxInFlight = 1024;
    private const ulong WakeTag = ulong.MaxValue;

    private readonly FileBlockDevice _device;
    private readonly IoUring _ring;
    private readonly int _eventFd;
    /// <summary>Where the ring reads the eventfd's counter into (native: the kernel writes it asynchronously).</summary>
    private readonly ulong* _eventValue;
    private readonly UringOperation[] _operations;
    private readonly ConcurrentQueue<UringOperation> _free = new();
    private readonly ConcurrentQueue<UringOperation> _submissions = new();
    /// <summary>Requests that continuations on the ring thread queued: the ring submits them first, the watchdog may rescue them.</summary>
    private readonly ConcurrentQueue<UringOperation> _ownSubmissions = new();
    /// <summary>Rescues what a stuck continuation queued (see the class comment); armed only while such requests wait.</summary>
    private readonly Timer _watchdog;
    /// <summary>1 while the watchdog is armed.</summary>
    private int _watchdogArmed;
    /// <summary>When the continuation running on the ring thread started (Stopwatch ticks), 0 between continuations.</summary>
    private long _continuationSince;
    private readonly Thread _ringThread;
    private int _created;
    /// <summary>Requests taken and not yet completed (queued or in the kernel).</summary>
    private int _outstanding;
    /// <summary>1 while the ring thread waits in the kernel, or is about to: a new request must wake it.</summary>
    private int _sleeping;
    private volatile bool _stopping;
    private bool _wakeArmed;
    /// <summary>A continuation that takes longer than this on the ring thread starts a back-off (see the class comment).</summary>
    private static readonly long s_slowContinuationTicks = Stopwatch.Frequency / 1000;
    /// <summary>The current back-off, in Stopwatch ticks (ring thread only); 0 before the first.</summary>
    private long _backOffTicks;
    /// <summary>Continuations run on the ring thread from this timestamp on (ring thread only).</summary>
    private long _inlineFrom;

    private UringFileIo(FileBlockDevice device, IoUring ring, int eventFd)
    {
        _device = device;
        _ring = ring;
        _eventFd = eventFd;
        _eventValue = (ulong*)NativeMemory.AllocZeroed(sizeof(ulong));
        _operations = new UringOperation[Math.Min(ring.CqEntries, MaxInFlight)];
        // Without capturing the execution context: the timer must not keep a caller's AsyncLocals alive.
        using (ExecutionContext.SuppressFlow()) _watchdog = new Timer(static state => ((UringFileIo)state!).Watch(), this, Timeout.Infinite, Timeout.Infinite);
        _ringThread = new Thread(RingLoop) { IsBackground = true, Name = "edgeblock io_uring" };
        _ringThread.Start();
    }

    /// <summary>Completions seen so far (requests, not wake-ups); for tests.</summary>
    internal long Completions;

    /// <summary>Requests that went the thread-pool way after all; for tests.</summary>
    internal long Fallbacks;

    /// <summary>Requests that continuations on the ring thread queued, and those of them the watchdog rescued; for tests.</summary>
    internal long OwnSubmissions, Rescued;

    /// <summary>How long a continuation on the ring thread may run before the watchdog rescues the requests it queued.</summary>
    internal static readonly TimeSpan RescueAfter = TimeSpan.FromMilliseconds(50);

    /// <summary>
    /// The first back-off after a slow continuation, in Stopwatch ticks (100 ms); repeated ones grow to ten times
    /// it at most. Settable for tests, before the first request.
    /// </summary>
    internal long BackOffTicks = Stopwatch.Frequency / 10;

    /// <summary>
    /// Completions whose continuations the ring thread ran itself, counted once it has timed them, and those it
    /// sent to the thread pool (ring thread only writes them); for tests.
    /// </summary>
    internal long InlineCompletions, PoolCompletions;

    /// <summary>The ring's clock (Stopwatch ticks) when set; for tests, before the first request.</summary>
    internal Func<long>? Clock;

    /// <summary>Whether the calling thread is this ring's thread; for tests.</summary>
    internal bool OnRingThread => Thread.CurrentThread == _ringThread;

    private long Now() => Clock is { } clock ? clock() : Stopwatch.GetTimestamp();

    /// <summary>A ring for the descriptor, or null (with the errno) where io_uring is unavailable.</summary>
    public static UringFileIo? TryCreate(FileBlockDevice device, SafeFileHandle direct, out int errno)
    {
        IoUring? ring = IoUring.TryCreate(SqEntries, MaxInFlight, out errno);
        if (ring is null) return null;
        bool added = false;
        try
        {
            direct.DangerousAddRef(ref added);
            errno = ring.RegisterFiles([(int)direct.DangerousGetHandle()]);
        }
        finally
        {
            if (added) direct.DangerousRelease();
        }
        int eventFd = errno == 0 ? Native.EventFd(0, Native.EFD_CLOEXEC) : -1;
        if (eventFd < 0)
        {
            if (errno == 0) errno = Native.LastError;
            ring.Dispose();
            return null;
        }
        return new UringFileIo(device, ring, eventFd);
    }

    /// <summary>
    /// Queues a read or a write (without FUA) of the direct descriptor for the ring thread. False when the ring
    /// does not take it: the caller then runs it the thread-pool way.
    /// </summary>
    public bool TryStart(in FileIoRequest request, out ValueTask<BlockStatus> pending)
    {
        Debug.Assert(request.Kind == FileIoKind.Read || (request.Kind == FileIoKind.Write && !request.Fua));
        pending = default;
        // On the ring thread, only a continuation (timed for the watchdog) may queue: nothing else runs callers' code there.
        bool own = Thread.CurrentThread == _ringThread;
        if (own && _continuationSince == 0) return false;
        UringOperation? operation = Rent();
        if (operation is null) return false;
        MemoryHandle pin = request.Buffer.Pin();
        // Counted before the check, so the ring thread cannot finish while this request is on its way (see RingLoop).
        Interlocked.Increment(ref _outstanding);
        if (_stopping || !_device.IsDirectTransfer(pin.Pointer, request.Offset, request.Length))
        {
            Interlocked.Decrement(ref _outstanding);
            pin.Dispose();
            _free.Enqueue(operation);
            return false;
        }
        operation.Prepare(in request, pin);
        pending = operation.Pending;
        if (own)
        {
            // The ring thread is busy with us: no wake-up needed, it submits this when the continuation returns.
            _ownSubmissions.Enqueue(operation);
            OwnSubmissions++;
            if (Volatile.Read(ref _watchdogArmed) == 0) ArmWatchdog();
            return true;
        }
        _submissions.Enqueue(operation);
        if (Volatile.Read(ref _sleeping) != 0 && Interlocked.Exchange(ref _sleeping, 0) != 0) Native.Signal(_eventFd);
        return true;
    }

    private void ArmWatchdog()
    {
        if (Interlocked.Exchange(ref _watchdogArmed, 1) == 0) _watchdog.Change(RescueAfter, Timeout.InfiniteTimeSpan);
    }

    /// <summary>
    /// The watchdog's tick (a timer thread): when the continuation that queued requests still runs, it waits for them
    /// (or is merely slow); either way they go to the thread pool. Otherwise it re-arms while some wait, or stops.
    /// </summary>
    private void Watch()
    {
        long since = Volatile.Read(ref _continuationSince);
        if (since != 0 && Stopwatch.GetElapsedTime(since) >= RescueAfter)
        {
            while (_ownSubmissions.TryDequeue(out UringOperation? operation))
            {
                Interlocked.Increment(ref Rescued);
                operation.Rescue();
            }
        }
        Volatile.Write(ref _watchdogArmed, 0);
        // Announce the stop, then look once more: a request queued before it is seen here, one after it re-arms.
        Interlocked.MemoryBarrier();
        if (!_ownSubmissions.IsEmpty && !_stopping) ArmWatchdog();
    }

    private UringOperation? Rent()
    {
        if (_free.TryDequeue(out UringOperation? operation)) return operation;
        int index = Interlocked.Increment(ref _created) - 1;
        if (index >= _operations.Length)
        {
            Interlocked.Decrement(ref _created);
            return null;
        }
        operation = new UringOperation(this, _device, index);
        Volatile.Write(ref _operations[index], operation);
        return operation;
    }

    internal void Return(UringOperation operation) => _free.Enqueue(operation);

    internal void Publish() => _ring.Publish();

    /// <summary>Called when an operation has its result, before its continuation may run.</summary>
    internal void Completed() => Interlocked.Decrement(ref _outstanding);

    private void RingLoop()
    {
        ArmWake();
        while (true)
        {
            // Continuations of this batch may defer work (a transport's send) to its end: one send for all of them.
            // Whether they run inline is decided per batch: a back-off that ends meanwhile counts from the next.
            bool batch = false, inline = false;
            if (_ring.HasCompletions)
            {
                inline = Now() >= _inlineFrom;
                batch = inline;
            }
            if (batch) CompletionBatch.Begin();
            while (_ring.TryReap(out var cqe))
            {
                if (cqe.UserData == WakeTag)
                {
                    _wakeArmed = false;
                    continue;
                }
                Interlocked.Increment(ref Completions);
                UringOperation operation = Volatile.Read(ref _operations[(int)cqe.UserData]);
                if (!inline)
                {
                    operation.Complete(cqe.Result, inline: false);
                    Volatile.Write(ref PoolCompletions, PoolCompletions + 1);
                    continue;
                }
                long started = Now();
                Volatile.Write(ref _continuationSince, Stopwatch.GetTimestamp());
                operation.Complete(cqe.Result, inline: true);
                Volatile.Write(ref _continuationSince, 0);
                long finished = Now();
                if (finished - started > s_slowContinuationTicks)
                {
                    // Someone's continuation blocks (or was preempted): continuations run on the thread pool for a
                    // while, so the ring keeps moving. Again soon after the last back-off ended: a longer one.
                    _backOffTicks = finished - _inlineFrom < _backOffTicks ? Math.Min(2 * _backOffTicks, 10 * BackOffTicks) : BackOffTicks;
                    _inlineFrom = finished + _backOffTicks;
                    inline = false;
                }
                Volatile.Write(ref InlineCompletions, InlineCompletions + 1);
            }
            if (batch) CompletionBatch.End();
            if (!_wakeArmed) ArmWake();
            // Keep one SQE for re-arming the wake-up read. Our own continuations' requests first: they are the oldest.
            while (_ring.SqSpace > 1 && _ownSubmissions.TryDequeue(out UringOperation? operation)) operation.Fill(_ring.GetSqe());
            while (_ring.SqSpace > 1 && _submissions.TryDequeue(out UringOperation? operation)) operation.Fill(_ring.GetSqe());

            if (_stopping && Volatile.Read(ref _outstanding) == 0 && _ring.Unsubmitted <= (_wakeArmed ? 1u : 0u)) break;

            // Announce the sleep, then look once more: a request queued before the announcement is seen here,
            // one queued after it finds _sleeping set and signals the eventfd.
            Volatile.Write(ref _sleeping, 1);
            Interlocked.MemoryBarrier();
            bool wait = _submissions.IsEmpty && _ownSubmissions.IsEmpty && !_ring.HasCompletions;
            uint unsubmitted = _ring.Unsubmitted;
            int errno = wait || unsubmitted > 0 ? _ring.Enter(unsubmitted, wait) : 0;
            Volatile.Write(ref _sleeping, 0);
            if (errno != 0 && errno != Native.EINTR) Thread.Sleep(1); // EAGAIN/EBUSY (kernel short of memory): try again shortly
        }
        // The wake-up read must not outlive us (the kernel would write into freed memory): complete it.
        if (_wakeArmed)
        {
            Native.Signal(_eventFd);
            while (_wakeArmed)
            {
                while (_ring.TryReap(out var cqe))
                {
                    if (cqe.UserData == WakeTag) _wakeArmed = false;
                }
                if (_wakeArmed && _ring.Enter(_ring.Unsubmitted, wait: true) is not (0 or Native.EINTR)) Thread.Sleep(1);
            }
        }
        // The file is released now, not whenever the kernel tears the ring down: the caller may unmount it next.
        _ring.UnregisterFiles();
        _ring.Dispose();
        Native.Close(_eventFd);
        NativeMemory.Free(_eventValue);
    }

    /// <summary>A read of the eventfd: it completes, and so ends the ring's wait, when a caller signals it.</summary>
    private void ArmWake()
    {
        EdgeBlock.Interop.Native.IoUringSqe* sqe = _ring.GetSqe();
        if (sqe == null) return; // full: armed on the next pass
        sqe->Opcode = IoUring.OpRead;
        sqe->Fd = _eventFd;
        sqe->Address = (ulong)_eventValue;
        sqe->Length = sizeof(ulong);
        sqe->UserData = WakeTag;
        _ring.Publish();
        _wakeArmed = true;
    }

    /// <summary>Completes an operation: a full transfer succeeds, an errno is a status, anything odd is retried the blocking way.</summary>
    internal static bool NeedsRetry(int result, long length) =>
        (result >= 0 && result != length) || result is -Native.EAGAIN or -Native.EINTR or -Native.EINVAL or -Native.EOPNOTSUPP;

    internal void CountFallback() => Interlocked.Increment(ref Fallbacks);

    /// <summary>
    /// Stops taking requests. Those already taken complete normally; then the ring thread closes the ring.
    /// Waits for that, so a disposed device leaves no ring behind: the registered file keeps the descriptor's
    /// lock (FileShare) until the ring lets it go, and a caller may reopen the file at once. On a loaded
    /// machine the ring thread can take more than a second to get a CPU; the wait is bounded for a ring that hangs.
    /// </summary>
    public void Dispose()
    {
        if (_stopping) return;
        _stopping = true;
        _watchdog.Dispose();
        // Ends the ring thread's wait: it finishes what it has taken, then closes the ring.
        Native.Signal(_eventFd);
        if (Thread.CurrentThread != _ringThread) _ringThread.Join(TimeSpan.FromSeconds(10));
    }
}

/// <summary>One request on the ring, reused: completes the caller's ValueTask without allocating.</summary>
internal sealed class UringOperation : ReusableValueTaskSource<BlockStatus>, IThreadPoolWorkItem
{
    private readonly UringFileIo _engine;
    private readonly FileBlockDevice _device;
    private FileIoRequest _request;
    private MemoryHandle _pin;

    public UringOperation(UringFileIo engine, FileBlockDevice device, int index)
        : base(runContinuationsAsynchronously: true)
    {
        _engine = engine;
        _device = device;
        Index = index;
    }

    public int Index { get; }

    public void Prepare(in FileIoRequest request, MemoryHandle pin)
    {
        _request = request;
        _pin = pin;
    }

    /// <summary>Describes the request in an SQE and publishes it (on the ring thread).</summary>
    public unsafe void Fill(EdgeBlock.Interop.Native.IoUringSqe* sqe)
    {
        sqe->Opcode = _request.Kind == FileIoKind.Read ? IoUring.OpRead : IoUring.OpWrite;
        sqe->Flags = IoUring.SqeFixedFile;
        sqe->Fd = 0;
        sqe->Offset = (ulong)_request.Offset;
        sqe->Address = (ulong)_pin.Pointer;
        sqe->Length = (uint)_request.Length;
        sqe->UserData = (ulong)Index;
        _engine.Publish();
    }

    /// <summary>Called on the completion thread with the CQE's result (bytes, or -errno).</summary>
    public void Complete(int result, bool inline)
    {
        RunContinuationsAsynchronously = !inline;
        if (UringFileIo.NeedsRetry(result, _request.Length))
        {
            // A short transfer (the file shrank under us) or a refusal: the blocking path handles every case.
            _engine.CountFallback();
            ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
            return;
        }
        Finish(result >= 0
            ? BlockStatus.Success
            : ErrnoMapping.ToStatus(-result, _request.Kind == FileIoKind.Read ? BlockStatus.ReadError : BlockStatus.WriteError));
    }

    /// <summary>Runs the request the blocking way on the thread pool instead (the watchdog's rescue, before it reached the ring).</summary>
    public void Rescue()
    {
        RunContinuationsAsynchronously = true;
        ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
    }

    void IThreadPoolWorkItem.Execute() => Finish(_device.Execute(in _request));

    private void Finish(BlockStatus status)
    {
        // The buffer goes back to its owner when we complete; keep no reference to it.
        _pin.Dispose();
        _pin = default;
        _request = default;
        _engine.Completed();
        SetResult(status);
    }

    protected override void OnResultTaken() => _engine.Return(this);
}
