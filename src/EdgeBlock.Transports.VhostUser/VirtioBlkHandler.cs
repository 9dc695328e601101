using System.Buffers.Binary;
using EdgeBlock.Storage;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Transports.VhostUser;

/// <summary>
/// virtio-blk request semantics (virtio 1.1, 5.2.6) for the chains of one queue: the request
/// header (type, sector), its checks against the device, the call on <see cref="IBlockDevice"/>,
/// and the status byte at the end of the last device-writable buffer. Ring mechanics stay in
/// <see cref="VirtQueue"/>: this class gets a walked chain and hands it back, with its status
/// written, through <see cref="VirtQueue.PushUsed"/>.
/// </summary>
internal sealed unsafe class VirtioBlkHandler
{
    public const int MaxDiscardSegments = 32;
    private const int MaxLoggedBadRequests = 20;

    private readonly VirtQueue _queue;
    private readonly BlkDeviceContext _ctx;
    /// <summary>Where this queue's thread waits for the memory budget.</summary>
    private readonly BudgetWait _budgetWait = new();
    private int _badLogged;
    private long _failed;
    private long _bytesRead, _bytesWritten;

    public VirtioBlkHandler(VirtQueue queue, BlkDeviceContext ctx)
    {
        _queue = queue;
        _ctx = ctx;
    }

    public long Failed => Interlocked.Read(ref _failed);
    public long BytesRead => Interlocked.Read(ref _bytesRead);
    public long BytesWritten => Interlocked.Read(ref _bytesWritten);

    /// <summary>
    /// Finds the status byte (the last byte of the last device-writable buffer, 5.2.6). Without
    /// one the request cannot even fail, so the ring counts as broken: returns the reason.
    /// </summary>
    public static string? LocateStatus(BlkRequest r)
    {
        if (r.WritableCount == 0)
        {
            return $"the chain from head {r.Head} has no device-writable descriptor for the status byte";
        }
        Segment last = r.Writable[r.WritableCount - 1];
        if (last.Pointer == 0 || last.Length == 0)
        {
            return $"the status descriptor of head {r.Head} is empty or outside guest memory";
        }
        r.StatusPointer = last.Pointer + last.Length - 1;
        return null;
    }

    /// <summary>Serves a walked chain on the queue's thread; content is the reason it is unusable, if it is.</summary>
    public void Handle(BlkRequest r, string? content)
    {
        if (content is not null)
        {
            Fail(r, content, Virtio.BlkSIoErr);
            return;
        }
        try
        {
            Execute(r);
        }
        catch (Exception e) when (r.InFlight)
        {
            // The device threw instead of returning a status: the request fails, the queue goes on.
            LogDeviceException(e);
            FinishDevice(r, BlockStatus.InternalError, fromWorker: true);
        }
    }

    private void Execute(BlkRequest r)
    {
        Span<byte> header = stackalloc byte[Virtio.BlkOutHdrSize];
        if (!ScatterGather.CopyFrom(r.Readable, r.ReadableCount, 0, header))
        {
            Fail(r, $"the request header needs 16 device-readable bytes, the chain has {r.ReadableBytes}", Virtio.BlkSIoErr);
            return;
        }
        // struct virtio_blk_req: type u32, reserved u32, sector u64.
        r.Type = BinaryPrimitives.ReadUInt32LittleEndian(header);
        r.Sector = BinaryPrimitives.ReadUInt64LittleEndian(header[8..]);
        switch (r.Type)
        {
            case Virtio.BlkTIn:
                ExecuteIn(r);
                return;
            case Virtio.BlkTOut:
                ExecuteOut(r);
                return;
            case Virtio.BlkTFlush:
                r.UsedLength = 1;
                Submit(r, _ctx.Device.FlushAsync());
                return;
            case Virtio.BlkTGetId:
                ExecuteGetId(r);
                return;
            case Virtio.BlkTDiscard:
            case Virtio.BlkTWriteZeroes:
                ExecuteRanges(r);
                return;
            default:
                r.UsedLength = 1;
                Complete(r, Virtio.BlkSUnsupp, fromWorker: true);
                return;
        }
    }

    private void ExecuteIn(BlkRequest r)
    {
        long length = r.WritableBytes - 1;
        if (!ValidateTransfer(r, length, out string? error))
        {
            Fail(r, error!, Virtio.BlkSIoErr);
            return;
        }
        Memory<byte> buffer;
        if (r.Writable[0].Length >= length)
        {
            buffer = r.GuestBuffer.Retarget(r.Writable[0].Pointer, r.DataLength);
        }
        else
        {
            r.UsedLength = (uint)(r.DataLength + 1);
            StartBounce(r);
            return;
        }
        r.UsedLength = (uint)(r.DataLength + 1);
        Submit(r, _ctx.Device.ReadAsync(r.Lba, buffer));
    }

    private void ExecuteOut(BlkRequest r)
    {
        if (_ctx.ReadOnly)
        {
            Fail(r, null, Virtio.BlkSIoErr);
            return;
        }
        long length = r.ReadableBytes - Virtio.BlkOutHdrSize;
        if (!ValidateTransfer(r, length, out string? error))
        {
            Fail(r, error!, Virtio.BlkSIoErr);
            return;
        }
        ReadOnlyMemory<byte> data;
        if (ScatterGather.TryContiguous(r.Readable, r.ReadableCount, Virtio.BlkOutHdrSize, r.DataLength, out nint pointer))
        {
            data = r.GuestBuffer.Retarget(pointer, r.DataLength);
        }
        else
        {
            r.UsedLength = 1;
            StartBounce(r);
            return;
        }
        r.UsedLength = 1;
        Submit(r, _ctx.Device.WriteAsync(r.Lba, data, fua: false));
    }

    /// <summary>
    /// Data spread over several guest buffers goes through a bounce buffer rented from the daemon's pool, a piece of
    /// at most the pool's largest buffer at a time, so a 32 MiB request needs 128 KiB of the budget, not 32 MiB.
    /// At the budget the queue's thread waits here: the virtqueue is not drained further until buffers come back.
    /// </summary>
    private void StartBounce(BlkRequest r)
    {
        r.UsesBounce = true;
        int length = Math.Min(r.DataLength, _ctx.Buffers.MaxBufferBytes);
        r.Bounce = _ctx.Buffers.TryRent(length, 0, out var bounce) ? bounce : _budgetWait.Rent(_ctx.Buffers, length);
        RunBounce(r, fromWorker: true);
    }

    /// <summary>Moves pieces until one waits for the device (it continues in ContinueAfterDevice) or all are done.</summary>
    private void RunBounce(BlkRequest r, bool fromWorker)
    {
        while (true)
        {
            AlignedBuffer bounce = r.Bounce!;
            r.BouncePiece = Math.Min(r.DataLength - r.BounceDone, bounce.Length);
            long lba = r.Lba + r.BounceDone / _ctx.BlockSize;
            Memory<byte> piece = bounce.Memory[..r.BouncePiece];
            ValueTask<BlockStatus> op;
            if (r.Type == Virtio.BlkTIn)
            {
                op = _ctx.Device.ReadAsync(lba, piece);
            }
            else
            {
                ScatterGather.CopyFrom(r.Readable, r.ReadableCount, Virtio.BlkOutHdrSize + r.BounceDone, piece.Span);
                op = _ctx.Device.WriteAsync(lba, piece, fua: false);
            }
            if (!op.IsCompleted)
            {
                r.Awaiter = op.GetAwaiter();
                r.Awaiter.UnsafeOnCompleted(r.Continuation);
                return;
            }
            BlockStatus status = GetResult(op);
            if (!AdvanceBounce(r, status))
            {
                FinishDevice(r, status, fromWorker);
                return;
            }
        }
    }

    /// <summary>A piece is done: a read's is copied out to the guest. True while pieces remain.</summary>
    private static bool AdvanceBounce(BlkRequest r, BlockStatus status)
    {
        if (status != BlockStatus.Success)
        {
            return false;
        }
        if (r.Type == Virtio.BlkTIn)
        {
            ScatterGather.CopyTo(r.Writable, r.WritableCount, r.BounceDone, r.Bounce!.Span[..r.BouncePiece]);
        }
        r.BounceDone += r.BouncePiece;
        return r.BounceDone < r.DataLength;
    }

    public void ReturnBounce(AlignedBuffer bounce) => _ctx.Buffers.Return(bounce);

    private void ExecuteGetId(BlkRequest r)
    {
        int n = (int)Math.Min(Virtio.BlkIdBytes, r.WritableBytes - 1);
        if (n <= 0)
        {
            Fail(r, "GET_ID without room for the serial number", Virtio.BlkSIoErr);
            return;
        }
        ScatterGather.CopyTo(r.Writable, r.WritableCount, 0, _ctx.Serial.AsSpan(0, n));
        r.UsedLength = (uint)(n + 1);
        Complete(r, Virtio.BlkSOk, fromWorker: true);
    }

    private void ExecuteRanges(BlkRequest r)
    {
        if (_ctx.ReadOnly)
        {
            Fail(r, null, Virtio.BlkSIoErr);
            return;
        }
        long length = r.ReadableBytes - Virtio.BlkOutHdrSize;
        if (length <= 0 || length % Virtio.DiscardSegmentSize != 0 || length / Virtio.DiscardSegmentSize > MaxDiscardSegments)
        {
            Fail(r, $"{(r.Type == Virtio.BlkTDiscard ? "DISCARD" : "WRITE_ZEROES")} with {length} bytes of ranges (1 to {MaxDiscardSegments} ranges of 16 bytes)", Virtio.BlkSIoErr);
            return;
        }
        r.RangeCount = (int)(length / Virtio.DiscardSegmentSize);
        // Copied once: the guest may rewrite them while the device works through them.
        ScatterGather.CopyFrom(r.Readable, r.ReadableCount, Virtio.BlkOutHdrSize, r.Ranges.AsSpan(0, (int)length));
        r.UsedLength = 1;
        RunRanges(r, fromWorker: true);
    }

    private bool ValidateTransfer(BlkRequest r, long length, out string? error)
    {
        int blockSize = _ctx.BlockSize;
        if (length <= 0 || length % blockSize != 0 || length > _ctx.MaxTransferBytes)
        {
            error = $"a transfer of {length} bytes (a multiple of {blockSize} up to {_ctx.MaxTransferBytes} is required)";
            return false;
        }
        ulong sectors = (ulong)length >> Virtio.SectorShift;
        if (r.Sector > _ctx.CapacitySectors || sectors > _ctx.CapacitySectors - r.Sector)
        {
            error = $"sectors {r.Sector}+{sectors} lie beyond the device's {_ctx.CapacitySectors}";
            return false;
        }
        if (((r.Sector << Virtio.SectorShift) & (ulong)(blockSize - 1)) != 0)
        {
            error = $"sector {r.Sector} is not aligned to the {blockSize}-byte block size";
            return false;
        }
        r.Lba = (long)((r.Sector << Virtio.SectorShift) / (ulong)blockSize);
        r.DataLength = (int)length;
        error = null;
        return true;
    }

    /// <summary>
    /// Runs the DISCARD/WRITE_ZEROES ranges from r.RangeIndex on, one device call at a time;
    /// a call that does not complete at once continues here from its completion.
    /// </summary>
    private void RunRanges(BlkRequest r, bool fromWorker)
    {
        bool discard = r.Type == Virtio.BlkTDiscard;
        int blockSize = _ctx.BlockSize;
        while (r.RangeIndex < r.RangeCount)
        {
            // struct virtio_blk_discard_write_zeroes: sector u64, num_sectors u32, flags u32.
            ReadOnlySpan<byte> range = r.Ranges.AsSpan(r.RangeIndex * Virtio.DiscardSegmentSize, Virtio.DiscardSegmentSize);
            r.RangeIndex++;
            ulong sector = BinaryPrimitives.ReadUInt64LittleEndian(range);
            uint count = BinaryPrimitives.ReadUInt32LittleEndian(range[8..]);
            uint flags = BinaryPrimitives.ReadUInt32LittleEndian(range[12..]);
            if ((discard && flags != 0) || (!discard && (flags & ~Virtio.WriteZeroesFlagUnmap) != 0))
            {
                FinishDevice(r, BlockStatus.NotSupported, fromWorker);
                return;
            }
            if (count == 0)
            {
                continue;
            }
            if (sector > _ctx.CapacitySectors || count > _ctx.CapacitySectors - sector ||
                ((sector << Virtio.SectorShift) & (ulong)(blockSize - 1)) != 0 ||
                (((ulong)count << Virtio.SectorShift) & (ulong)(blockSize - 1)) != 0)
            {
                if (fromWorker)
                {
                    LogBadRequest(r.Head, $"range {sector}+{count} is beyond the device's {_ctx.CapacitySectors} sectors or not block aligned");
                }
                FinishDevice(r, BlockStatus.OutOfRange, fromWorker);
                return;
            }
            long lba = (long)((sector << Virtio.SectorShift) / (ulong)blockSize);
            long blocks = (long)(((ulong)count << Virtio.SectorShift) / (ulong)blockSize);
            ValueTask<BlockStatus> op;
            if (discard)
            {
                if (!_ctx.SupportsDeallocate)
                {
                    continue; // a hint the device cannot use
                }
                op = _ctx.Device.DeallocateAsync(lba, blocks);
            }
            else
            {
                bool unmap = (flags & Virtio.WriteZeroesFlagUnmap) != 0 && _ctx.SupportsDeallocate;
                op = _ctx.Device.WriteZeroesAsync(lba, blocks, unmap);
            }
            if (!op.IsCompleted)
            {
                r.Awaiter = op.GetAwaiter();
                r.Awaiter.UnsafeOnCompleted(r.Continuation);
                return;
            }
            BlockStatus status = GetResult(op);
            if (discard && status == BlockStatus.NotSupported)
            {
                status = BlockStatus.Success;
            }
            if (status != BlockStatus.Success)
            {
                FinishDevice(r, status, fromWorker);
                return;
            }
        }
        FinishDevice(r, BlockStatus.Success, fromWorker);
    }

    private BlockStatus GetResult(ValueTask<BlockStatus> op)
    {
        try
        {
            return op.Result;
        }
        catch (Exception e)
        {
            LogDeviceException(e);
            return BlockStatus.InternalError;
        }
    }

    private void Submit(BlkRequest r, ValueTask<BlockStatus> op)
    {
        if (op.IsCompleted)
        {
            FinishDevice(r, GetResult(op), fromWorker: true);
            return;
        }
        // No state machine, no Task: the slot's cached continuation resumes on the device's thread.
        r.Awaiter = op.GetAwaiter();
        r.Awaiter.UnsafeOnCompleted(r.Continuation);
    }

    /// <summary>A device operation finished on another thread.</summary>
    public void OnDeviceCompleted(BlkRequest r, BlockStatus status)
    {
        try
        {
            ContinueAfterDevice(r, status);
        }
        catch (Exception e) when (r.InFlight)
        {
            LogDeviceException(e);
            FinishDevice(r, BlockStatus.InternalError, fromWorker: false);
        }
    }

    private void ContinueAfterDevice(BlkRequest r, BlockStatus status)
    {
        if (r.UsesBounce && AdvanceBounce(r, status))
        {
            RunBounce(r, fromWorker: false);
            return;
        }
        if (r.Type is Virtio.BlkTDiscard or Virtio.BlkTWriteZeroes)
        {
            if (r.Type == Virtio.BlkTDiscard && status == BlockStatus.NotSupported)
            {
                status = BlockStatus.Success;
            }
            if (status == BlockStatus.Success)
            {
                RunRanges(r, fromWorker: false);
                return;
            }
        }
        FinishDevice(r, status, fromWorker: false);
    }

    private void FinishDevice(BlkRequest r, BlockStatus status, bool fromWorker)
    {
        byte s = status switch
        {
            BlockStatus.Success => Virtio.BlkSOk,
            BlockStatus.NotSupported => Virtio.BlkSUnsupp,
            _ => Virtio.BlkSIoErr,
        };
        // The budget is free again before the guest hears of the completion.
        r.ReleaseBuffers();
        if (s != Virtio.BlkSOk)
        {
            r.UsedLength = 1; // only the status byte was written
            Interlocked.Increment(ref _failed);
        }
        else if (r.Type == Virtio.BlkTIn)
        {
            Interlocked.Add(ref _bytesRead, r.DataLength);
        }
        else if (r.Type == Virtio.BlkTOut)
        {
            Interlocked.Add(ref _bytesWritten, r.DataLength);
        }
        Complete(r, s, fromWorker);
    }

    private void Fail(BlkRequest r, string? reason, byte status)
    {
        if (reason is not null)
        {
            LogBadRequest(r.Head, reason);
        }
        Interlocked.Increment(ref _failed);
        r.UsedLength = 1;
        Complete(r, status, fromWorker: true);
    }

    private void Complete(BlkRequest r, byte status, bool fromWorker)
    {
        *(byte*)r.StatusPointer = status;
        _queue.PushUsed(r, fromWorker);
    }

    private void LogBadRequest(ushort head, string reason)
    {
        if (_badLogged < MaxLoggedBadRequests)
        {
            _badLogged++;
            _ctx.Logger.LogWarning("vhost-user-blk queue {Queue}: request at descriptor {Head} failed with IOERR: {Reason}{More}",
                _queue.Index, head, reason, _badLogged == MaxLoggedBadRequests ? " (further bad requests on this queue are not logged)" : "");
        }
    }

    public void LogDeviceException(Exception e) =>
        _ctx.Logger.LogError(e, "vhost-user-blk queue {Queue}: the block device threw; the request fails with IOERR", _queue.Index);
}
