using System.Diagnostics;
using System.Runtime.InteropServices;
using EdgeBlock.Storage;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Transports.Ublk;

/// <summary>
/// One hardware queue of a ublk device: a thread of its own with an io_uring on /dev/ublkcN. It fetches on every
/// tag (FETCH_REQ, each tag's buffer address with it), reads the request from the mapped descriptor array when a
/// fetch completes, starts it on the device, and commits the result with the next fetch (COMMIT_AND_FETCH_REQ).
/// The driver accepts commands for a queue only from the task that fetched on it, so completions from other
/// threads come back through a <see cref="CompletionRing"/> and an eventfd the ring keeps a read posted on.
/// Buffers: one per tag, of the largest transfer, in one mapping per queue (the driver copies write data into it
/// before it hands the request over, so the buffer must exist before the request's size is known).
/// </summary>
internal sealed unsafe class UblkQueue : ITagCompletion, IDisposable
{
    private const ulong WakeUserData = ulong.MaxValue;

    private readonly int _queueId;
    private readonly int _charFd;
    private readonly int _depth;
    private readonly int _maxIoBytes;
    private readonly ILogger _logger;
    private readonly UringCmdRing _ring;
    private readonly AlignedBuffer _buffers;
    private readonly nint _descriptors;
    private readonly nuint _descriptorBytes;
    private readonly UblkIo[] _ios;
    private readonly CompletionRing _completed;
    private readonly int[] _inline;
    private int _inlineCount;
    private readonly int _eventFd;
    private readonly ulong* _eventValue;
    private readonly Thread _thread;
    private readonly TaskCompletionSource _fetched = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _sleeping;
    private volatile bool _stopping;
    /// <summary>Tags whose request is in the device (started, not yet committed). Ring thread only.</summary>
    private int _inDevice;
    /// <summary>Tags the driver still holds a fetch of. Ring thread only.</summary>
    private int _fetching;
    private long _requests, _failed, _bytesRead, _bytesWritten;

    public UblkQueue(int queueId, int charFd, IBlockDevice device, UblkOptions options, string name, ILogger logger)
    {
        _queueId = queueId;
        _charFd = charFd;
        _depth = options.QueueDepth;
        _maxIoBytes = options.MaxIoBytes;
        _logger = logger;
        int page = Environment.SystemPageSize;
        _descriptorBytes = (nuint)UblkAbi.DescriptorArrayBytes(_depth, page);
        // The driver maps the array read-only (it refuses writable mappings).
        _descriptors = Native.Mmap(0, _descriptorBytes, Native.PROT_READ, Native.MAP_SHARED | Native.MAP_POPULATE, charFd,
            UblkAbi.DescriptorArrayOffset(queueId, page));
        if (_descriptors == Native.MAP_FAILED) throw new UblkException($"mmap of queue {queueId}'s descriptors failed: {Native.Describe(Native.LastError)}");
        _eventFd = Native.EventFd(0, Native.EFD_CLOEXEC);
        _eventValue = (ulong*)NativeMemory.Alloc(sizeof(ulong));
        _buffers = AlignedBuffer.Map(checked(_depth * _maxIoBytes));
        _ring = UringCmdRing.Create((uint)_depth + 1); // a command per tag, and the eventfd read
        _completed = new CompletionRing(_depth);
        _inline = new int[_depth];
        _ios = new UblkIo[_depth];
        for (int tag = 0; tag < _depth; tag++)
            _ios[tag] = new UblkIo(this, tag, device, _buffers.Memory.Slice(tag * _maxIoBytes, _maxIoBytes), options.ReadOnly);
        _thread = new Thread(Run) { IsBackground = true, Name = $"{name} q{queueId}" };
    }

    public UblkStatistics Statistics => new(Volatile.Read(ref _requests), Volatile.Read(ref _failed),
        Volatile.Read(ref _bytesRead), Volatile.Read(ref _bytesWritten));

    /// <summary>Starts the thread; the task completes once every tag's fetch reached the driver (START_DEV waits for that).</summary>
    public Task StartAsync()
    {
        _thread.Start();
        return _fetched.Task;
    }

    /// <summary>Ends the thread once the requests in the device are committed (after STOP_DEV nothing new arrives).</summary>
    public Task StopAsync()
    {
        _stopping = true;
        Native.Signal(_eventFd);
        return _exited.Task;
    }

    /// <summary>A tag's request finished; from the ring thread (inline) or any other.</summary>
    public void Complete(int tag, bool inline)
    {
        if (inline && Thread.CurrentThread == _thread)
        {
            _inline[_inlineCount++] = tag;
            return;
        }
        _completed.Enqueue(tag);
        // The ring thread announces that it will sleep before it checks the ring a last time: either it sees this tag, or we wake it.
        if (Interlocked.Exchange(ref _sleeping, 0) == 1) Native.Signal(_eventFd);
    }

    private void Run()
    {
        try
        {
            for (int tag = 0; tag < _depth; tag++) PrepareIoCommand(UblkAbi.IoFetchReq, tag, 0);
            _fetching = _depth;
            ArmWake();
            int errno = _ring.Enter(wait: false);
            if (errno != 0) throw new UblkException($"queue {_queueId}: FETCH_REQ submission failed: {Native.Describe(errno)}");
            _fetched.TrySetResult();
            Loop();
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "ublk queue {Queue} stopped: {Message}", _queueId, ex.Message);
            _fetched.TrySetException(ex);
        }
        finally
        {
            _exited.TrySetResult();
        }
    }

    private void Loop()
    {
        while (true)
        {
            CommitCompleted();
            if (_stopping && _inDevice == 0) return;
            bool wait = true;
            Interlocked.Exchange(ref _sleeping, 1);
            if (_completed.HasItems || _inlineCount > 0) wait = false;
            int errno = _ring.Enter(wait);
            Volatile.Write(ref _sleeping, 0);
            if (errno != 0 && errno != Native.EINTR && errno != Native.EAGAIN)
                throw new UblkException($"queue {_queueId}: io_uring_enter failed: {Native.Describe(errno)}");
            while (_ring.TryReap(out var cqe)) OnCompletion(cqe);
            if (_fetching == 0 && _inDevice == 0 && !_stopping)
            {
                _logger.LogWarning("ublk queue {Queue}: the driver ended every fetch (device stopped from outside?)", _queueId);
                _stopping = true;
            }
        }
    }

    private void OnCompletion(in Native.IoUringCqe cqe)
    {
        if (cqe.UserData == WakeUserData)
        {
            ArmWake();
            return;
        }
        int tag = (int)cqe.UserData;
        Debug.Assert((uint)tag < (uint)_depth);
        if (cqe.Result == 0)
        {
            _inDevice++;
            _ios[tag].Start(((UblkAbi.IoDesc*)_descriptors)[tag]);
            return;
        }
        _fetching--;
        if (cqe.Result != UblkAbi.IoResAbort)
            _logger.LogError("ublk queue {Queue} tag {Tag}: the driver refused the command: {Error}", _queueId, tag, Native.Describe(-cqe.Result));
    }

    private void CommitCompleted()
    {
        while (_inlineCount > 0) Commit(_inline[--_inlineCount]);
        while (_completed.TryDequeue(out int tag)) Commit(tag);
    }

    private void Commit(int tag)
    {
        var io = _ios[tag];
        _inDevice--;
        _requests++;
        if (io.Result < 0) _failed++;
        else if (io.Op == UblkAbi.OpRead) _bytesRead += io.Result;
        else if (io.Op == UblkAbi.OpWrite) _bytesWritten += io.Result;
        PrepareIoCommand(UblkAbi.IoCommitAndFetchReq, tag, io.Result);
    }

    private void PrepareIoCommand(uint op, int tag, int result)
    {
        byte* sqe = _ring.PrepareUringCmd(_charFd, op, (ulong)tag);
        // One command per tag plus the wake read fit the ring, and each Enter submits what was prepared.
        if (sqe == null) throw new UblkException($"queue {_queueId}: submission ring full");
        *(UblkAbi.IoCmd*)(sqe + UringCmdRing.SqeCmdOffset) = new UblkAbi.IoCmd
        {
            QueueId = (ushort)_queueId,
            Tag = (ushort)tag,
            Result = result,
            Addr = (ulong)(_buffers.Pointer + (nint)tag * _maxIoBytes),
        };
    }

    private void ArmWake()
    {
        if (!_ring.PrepareRead(_eventFd, _eventValue, sizeof(ulong), WakeUserData))
            throw new UblkException($"queue {_queueId}: submission ring full");
    }

    /// <summary>After the thread ended: closing the ring cancels the fetches the driver still holds.</summary>
    public void Dispose()
    {
        _ring.Dispose();
        Native.Munmap(_descriptors, _descriptorBytes);
        Native.Close(_eventFd);
        NativeMemory.Free(_eventValue);
        ((IDisposable)_buffers).Dispose();
    }
}
