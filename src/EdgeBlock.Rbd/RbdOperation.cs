using System.Buffers;
using System.Diagnostics;
using System.Runtime.InteropServices;
using EdgeBlock.Rbd.Interop;
using EdgeBlock.Storage;
using EdgeBlock.Threading;
using Microsoft.Extensions.ObjectPool;

namespace EdgeBlock.Rbd;

internal enum RbdOperationKind : byte
{
    Read,
    Write,
    Flush,
    Discard,
    WriteZeroes,
}

/// <summary>
/// One asynchronous librbd call in flight, completing its caller's ValueTask through a pooled
/// IValueTaskSource. librbd calls <see cref="OnComplete"/> on its finisher thread, which must never block
/// (the next completions of the whole image wait behind it); so the callback only reads the result and
/// queues this object to the thread pool, where the caller's continuation runs. Nothing is allocated per
/// I/O on the managed heap: the GCHandle that librbd passes back is made once per pooled operation.
/// </summary>
internal sealed unsafe class RbdOperation : ReusableValueTaskSource<BlockStatus>, IThreadPoolWorkItem, IDisposable
{
    private readonly RbdBlockDevice _device;
    private GCHandle _self;
    private RbdOperationKind _kind;
    private bool _flushAfter;
    private MemoryHandle _pin;
    private long _result;

    public RbdOperation(RbdBlockDevice device)
        : base(runContinuationsAsynchronously: false)
    {
        _device = device;
        _self = GCHandle.Alloc(this, GCHandleType.Normal);
    }

    /// <summary>Starts the call. A FUA write is a write followed by a flush (librbd has no FUA).</summary>
    public ValueTask<BlockStatus> Start(RbdOperationKind kind, long offset, long length, Memory<byte> buffer, bool flushAfter)
    {
        Debug.Assert(_pin.Equals(default(MemoryHandle)), "operation started while in use");
        _kind = kind;
        _flushAfter = flushAfter;
        ValueTask<BlockStatus> completion = Pending;
        if (kind is RbdOperationKind.Read or RbdOperationKind.Write)
        {
            _pin = buffer.Pin();
        }
        Submit(kind, offset, length);
        return completion;
    }

    private void Submit(RbdOperationKind kind, long offset, long length)
    {
        int result = Librbd.AioCreateCompletion(GCHandle.ToIntPtr(_self), &OnComplete, out nint completion);
        if (result >= 0)
        {
            nint image = _device.ImageHandle;
            result = kind switch
            {
                RbdOperationKind.Read => Librbd.AioRead(image, (ulong)offset, (nuint)length, (byte*)_pin.Pointer, completion),
                RbdOperationKind.Write => Librbd.AioWrite(image, (ulong)offset, (nuint)length, (byte*)_pin.Pointer, completion),
                RbdOperationKind.Flush => Librbd.AioFlush(image, completion),
                RbdOperationKind.Discard => Librbd.AioDiscard(image, (ulong)offset, (ulong)length, completion),
                _ => Librbd.AioWriteZeroes(image, (ulong)offset, (nuint)length, completion, 0, 0),
            };
            if (result < 0)
            {
                // Refused before it was queued: librbd will not call back, so this completion is ours to release.
                Librbd.AioRelease(completion);
            }
        }
        if (result < 0)
        {
            _flushAfter = false;
            Finish(result);
        }
    }

    [UnmanagedCallersOnly]
    private static void OnComplete(nint completion, nint arg)
    {
        var operation = (RbdOperation)GCHandle.FromIntPtr(arg).Target!;
        operation._result = Librbd.AioGetReturnValue(completion);
        Librbd.AioRelease(completion);
        ThreadPool.UnsafeQueueUserWorkItem(operation, preferLocal: false);
    }

    void IThreadPoolWorkItem.Execute()
    {
        if (_flushAfter && _result >= 0)
        {
            _flushAfter = false;
            _pin.Dispose();
            _pin = default;
            Submit(RbdOperationKind.Flush, 0, 0);
            return;
        }
        Finish(_result);
    }

    private void Finish(long result)
    {
        _pin.Dispose();
        _pin = default;
        BlockStatus status = CephErrno.ToBlockStatus(result, _kind == RbdOperationKind.Read);
        _device.CountCompletion(status);
        SetResult(status);
    }

    protected override void OnResultTaken() => _device.Operations.Return(this);

    public void Dispose()
    {
        if (_self.IsAllocated)
        {
            _self.Free();
        }
    }
}

/// <summary>Creates a device's operations; those the pool does not keep free their GCHandle.</summary>
internal sealed class RbdOperationPolicy(RbdBlockDevice device) : IPooledObjectPolicy<RbdOperation>
{
    public RbdOperation Create() => new(device);

    public bool Return(RbdOperation operation) => true;
}
