using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading.Tasks.Sources;
using Microsoft.Win32.SafeHandles;

namespace EdgeBlock.Storage;

/// <summary>
/// Reads and writes of a <see cref="FileBlockDevice"/>'s O_DIRECT descriptor through io_uring, instead of a
/// blocking pread/pwrite on a thread-pool thread per request. Callers submit on their own thread (one
/// io_uring_enter under a lock, which does the block-layer submission inline); one dedicated thread waits
/// for completions and hands each to the thread pool, where the caller's continuation runs, as with the
/// thread-pool engine (a continuation that blocks cannot stall the ring). The descriptor is a registered
/// file: the ring holds its own reference, so closing the device cannot redirect a request in flight.
/// Requests the ring cannot take (more in flight than the completion ring holds, a refusal, an
/// unaligned buffer) and odd completions (short transfers, EAGAIN) go the thread-pool way instead.
/// </summary>
internal sealed unsafe class UringFileIo : IDisposable
{
    /// <summary>Submissions are serialized and consumed at once, so a small submission ring is enough.</summary>
    private const uint SqEntries = 32;
    /// <summary>Requests in flight at most (one completion slot each); beyond it the thread pool serves.</summary>
    internal const uint MaxInFlight = 1024;
    private const ulong WakeTag = ulong.MaxValue;
    private const int EINTR = 4, EAGAIN = 11, EINVAL = 22, EOPNOTSUPP = 95;

    private readonly FileBlockDevice _device;
    private readonly IoUring _ring;
    private readonly object _submitLock = new();
    private readonly UringOperation[] _operations;
    private readonly ConcurrentQueue<UringOperation> _free = new();
    private readonly Thread _completionThread;
    private int _created;
    private int _inFlight;
    private bool _stopping;

    private UringFileIo(FileBlockDevice device, IoUring ring)
    {
        _device = device;
        _ring = ring;
        _operations = new UringOperation[Math.Min(ring.CqEntries, MaxInFlight)];
        _completionThread = new Thread(CompletionLoop) { IsBackground = true, Name = "edgeblock io_uring" };
        _completionThread.Start();
    }

    /// <summary>Completions seen so far; for tests.</summary>
    internal long Completions;

    /// <summary>Requests that went the thread-pool way after all; for tests.</summary>
    internal long Fallbacks;

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
        if (errno != 0)
        {
            ring.Dispose();
            return null;
        }
        return new UringFileIo(device, ring);
    }

    /// <summary>
    /// Submits a read or a write (without FUA) of the direct descriptor. False when the ring does not take it:
    /// the caller then runs it the thread-pool way.
    /// </summary>
    public bool TryStart(in FileIoRequest request, out ValueTask<BlockStatus> pending)
    {
        Debug.Assert(request.Kind == FileIoKind.Read || (request.Kind == FileIoKind.Write && !request.Fua));
        pending = default;
        UringOperation? operation = Rent();
        if (operation is null) return false;
        MemoryHandle pin = request.Buffer.Pin();
        if (!_device.IsDirectTransfer(pin.Pointer, request.Offset, request.Length))
        {
            pin.Dispose();
            _free.Enqueue(operation);
            return false;
        }
        operation.Prepare(in request, pin);
        lock (_submitLock)
        {
            IoUring.Sqe* sqe = _stopping ? null : _ring.GetSqe();
            if (sqe != null)
            {
                sqe->Opcode = request.Kind == FileIoKind.Read ? IoUring.OpRead : IoUring.OpWrite;
                sqe->Flags = IoUring.SqeFixedFile;
                sqe->Fd = 0;
                sqe->Offset = (ulong)request.Offset;
                sqe->Address = (ulong)pin.Pointer;
                sqe->Length = (uint)request.Length;
                sqe->UserData = (ulong)operation.Index;
                if (_ring.Submit() == 0)
                {
                    _inFlight++;
                    pending = operation.Pending;
                    return true;
                }
            }
        }
        operation.Unprepare();
        _free.Enqueue(operation);
        return false;
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

    private void CompletionLoop()
    {
        while (true)
        {
            while (_ring.TryReap(out IoUring.Cqe cqe))
            {
                Interlocked.Increment(ref Completions);
                if (cqe.UserData != WakeTag) Volatile.Read(ref _operations[(int)cqe.UserData]).Complete(cqe.Result);
                lock (_submitLock) _inFlight--;
            }
            lock (_submitLock)
            {
                if (_stopping && _inFlight == 0) break;
            }
            int errno = _ring.WaitForCompletion();
            if (errno != 0 && errno != EINTR) Thread.Sleep(1); // not expected; do not spin
        }
        // The file is released now, not whenever the kernel tears the ring down: the caller may unmount it next.
        _ring.UnregisterFiles();
        _ring.Dispose();
    }

    /// <summary>Completes an operation: a full transfer succeeds, an errno is a status, anything odd is retried the blocking way.</summary>
    internal static bool NeedsRetry(int result, long length) =>
        (result >= 0 && result != length) || result is -EAGAIN or -EINTR or -EINVAL or -EOPNOTSUPP;

    internal void CountFallback() => Interlocked.Increment(ref Fallbacks);

    /// <summary>
    /// Stops taking requests. Those in flight complete normally; then the completion thread closes the ring.
    /// Waits a moment for that, so a disposed device leaves no ring behind.
    /// </summary>
    public void Dispose()
    {
        lock (_submitLock)
        {
            if (_stopping) return;
            _stopping = true;
            // Wake the completion thread, which may be waiting with nothing in flight.
            IoUring.Sqe* sqe = _ring.GetSqe();
            if (sqe != null)
            {
                sqe->Opcode = IoUring.OpNop;
                sqe->UserData = WakeTag;
                if (_ring.Submit() == 0) _inFlight++;
            }
        }
        if (Thread.CurrentThread != _completionThread) _completionThread.Join(TimeSpan.FromSeconds(1));
    }
}

/// <summary>One request on the ring, reused: completes the caller's ValueTask without allocating.</summary>
internal sealed class UringOperation : IValueTaskSource<BlockStatus>, IThreadPoolWorkItem
{
    private readonly UringFileIo _engine;
    private readonly FileBlockDevice _device;
    private ManualResetValueTaskSourceCore<BlockStatus> _completion = new() { RunContinuationsAsynchronously = true };
    private FileIoRequest _request;
    private MemoryHandle _pin;

    public UringOperation(UringFileIo engine, FileBlockDevice device, int index)
    {
        _engine = engine;
        _device = device;
        Index = index;
    }

    public int Index { get; }

    public ValueTask<BlockStatus> Pending => new(this, _completion.Version);

    public void Prepare(in FileIoRequest request, MemoryHandle pin)
    {
        _request = request;
        _pin = pin;
    }

    /// <summary>The ring did not take it after all.</summary>
    public void Unprepare()
    {
        _pin.Dispose();
        _pin = default;
        _request = default;
    }

    /// <summary>Called on the completion thread with the CQE's result (bytes, or -errno).</summary>
    public void Complete(int result)
    {
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

    void IThreadPoolWorkItem.Execute() => Finish(_device.Execute(in _request));

    private void Finish(BlockStatus status)
    {
        // The buffer goes back to its owner when we complete; keep no reference to it.
        _pin.Dispose();
        _pin = default;
        _request = default;
        _completion.SetResult(status);
    }

    public BlockStatus GetResult(short token)
    {
        BlockStatus status = _completion.GetResult(token);
        _completion.Reset();
        _engine.Return(this);
        return status;
    }

    public ValueTaskSourceStatus GetStatus(short token) => _completion.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _completion.OnCompleted(continuation, state, token, flags);
}
