using System.Collections.Concurrent;
using System.Diagnostics;
using EdgeBlock.Threading;

namespace EdgeBlock.Storage;

/// <summary>How a <see cref="FileBlockDevice"/> runs its reads and writes.</summary>
internal enum FileIoEngine : byte
{
    /// <summary>io_uring where the kernel allows it, else the thread pool.</summary>
    Auto,
    /// <summary>Blocking syscalls on thread-pool threads only.</summary>
    ThreadPool,
    /// <summary>io_uring or nothing: opening fails without it (tests).</summary>
    IoUring,
}

internal enum FileIoKind : byte
{
    Read,
    Write,
    Flush,
    WriteZeroes,
    Deallocate,
}

/// <summary>One request to a <see cref="FileBlockDevice"/>, in bytes. Writes only read from Buffer.</summary>
internal readonly record struct FileIoRequest(FileIoKind Kind, long Offset, long Length, Memory<byte> Buffer, bool Fua);

/// <summary>
/// Runs one <see cref="FileIoRequest"/> on a thread-pool thread, because the syscalls block,
/// and completes the caller's ValueTask through a pooled IValueTaskSource. Steady-state I/O
/// thus allocates nothing; RandomAccess's async methods would allocate a work item whenever
/// two requests are in flight on the same handle, which is the normal case for a target.
/// </summary>
internal sealed class FileIoOperation : ReusableValueTaskSource<BlockStatus>, IThreadPoolWorkItem
{
    private readonly FileBlockDevice _device;
    private readonly FileIoOperationPool _pool;
    private FileIoRequest _request;

    public FileIoOperation(FileBlockDevice device, FileIoOperationPool pool)
        : base(runContinuationsAsynchronously: false)
    {
        _device = device;
        _pool = pool;
    }

    public ValueTask<BlockStatus> Start(in FileIoRequest request)
    {
        Debug.Assert(_request == default, "Operation started while still in use.");
        _request = request;
        ValueTask<BlockStatus> completion = Pending;
        ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
        return completion;
    }

    void IThreadPoolWorkItem.Execute()
    {
        BlockStatus status = _device.Execute(in _request);
        // The buffer goes back to its owner when we complete; keep no reference to it.
        _request = default;
        SetResult(status);
    }

    protected override void OnResultTaken() => _pool.Return(this);
}

/// <summary>Free <see cref="FileIoOperation"/>s of one device, bounded so a burst does not pin memory forever.</summary>
internal sealed class FileIoOperationPool
{
    /// <summary>Deeper than any queue we expect to serve; beyond it operations are allocated and dropped.</summary>
    internal const int MaxPooled = 1024;

    private readonly FileBlockDevice _device;
    private readonly ConcurrentQueue<FileIoOperation> _free = new();
    private int _freeCount;

    public FileIoOperationPool(FileBlockDevice device)
    {
        _device = device;
    }

    internal int FreeCount => Volatile.Read(ref _freeCount);

    public FileIoOperation Rent()
    {
        if (_free.TryDequeue(out FileIoOperation? operation))
        {
            Interlocked.Decrement(ref _freeCount);
            return operation;
        }
        return new FileIoOperation(_device, this);
    }

    public void Return(FileIoOperation operation)
    {
        if (Interlocked.Increment(ref _freeCount) <= MaxPooled)
        {
            _free.Enqueue(operation);
        }
        else
        {
            Interlocked.Decrement(ref _freeCount);
        }
    }
}
