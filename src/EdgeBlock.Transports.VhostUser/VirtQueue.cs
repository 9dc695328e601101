using System.Buffers.Binary;
using EdgeBlock.Storage;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Transports.VhostUser;

/// <summary>
/// One split virtqueue of a virtio-blk device, served by its own thread that sleeps in poll()
/// on the kick eventfd. The thread takes chains off the available ring, translates every
/// guest address through the memory table, and submits the request to the device; completions
/// (on this thread, or the device's) write the status byte and the used element and signal the
/// call eventfd. The only lock is this queue's own, around the used ring and the call fd.
///
/// Bad input never reaches memory outside the guest's mappings: a request with a bad address,
/// wrong lengths or misordered descriptors completes with VIRTIO_BLK_S_IOERR; a ring whose
/// structure is broken (head or next index out of range, a loop, no status byte, an avail index
/// running ahead) stops this queue with a logged reason and a signal on the error eventfd,
/// until the front-end restarts it. Other queues and devices are not affected.
/// </summary>
internal sealed unsafe class VirtQueue : IDisposable
{
    public const int MaxDiscardSegments = 32;
    public const int MaxIndirectDescriptors = 4096;
    private const int MaxLoggedBadRequests = 20;
    private const ushort VringDescSize = 16;

    private readonly BlkDeviceContext _ctx;
    private readonly object _usedLock = new();

    // Configuration, written by the connection's message thread while the queue is stopped.
    public int Size;
    public ulong DescUserAddress, AvailUserAddress, UsedUserAddress;
    public bool AddressesSet;
    public ushort LastAvail;
    public int KickFd = -1;
    public int ErrFd = -1;
    public bool IndirectNegotiated;
    /// <summary>VIRTIO_RING_F_EVENT_IDX: used_event/avail_event instead of always notifying.</summary>
    public bool EventIdxNegotiated;
    private int _callFd = -1;
    private volatile bool _enabled;

    // Running state.
    private GuestMemory _memory = GuestMemory.Empty;
    private nint _desc, _avail, _used;
    private ushort _usedIdx;
    private ushort _notifiedIdx; // used index when we last decided whether to signal (EVENT_IDX's "old")
    private bool _notifiedValid; // false after a start: the guest's used_event may predate this back-end
    private BlkRequest[] _slots = [];
    private Thread? _worker;
    private int _wakeFd = -1;
    private volatile bool _stop;
    private volatile bool _broken;
    private bool _signalPending;
    private int _inflight;
    private int _badLogged;

    private long _completed;
    private long _failed;
    private long _bytesRead, _bytesWritten;

    // In-flight tracking (INFLIGHT_SHMFD): this queue's region of the shared area, or 0.
    private nint _track;
    private int _trackDescNum;
    private ulong _trackCounter;
    private ushort[] _resubmit = [];
    private int _resubmitCount;
    private int _resubmitNext;

    public VirtQueue(int index, BlkDeviceContext ctx)
    {
        Index = index;
        _ctx = ctx;
    }

    public int Index { get; }
    public bool Running => _worker is not null;
    public bool Enabled => _enabled;
    public bool Broken => _broken;
    public string? BrokenReason { get; private set; }
    public long Completed => Interlocked.Read(ref _completed);

    /// <summary>Requests found in flight in the tracking area at the last start (resubmitted).</summary>
    public int Resubmitted { get; private set; }

    /// <summary>Sets (or clears, with 0) this queue's region of the in-flight area; only while stopped.</summary>
    public void SetInflightRegion(nint region, int descNum)
    {
        if (_worker is null)
        {
            _track = region;
            _trackDescNum = descNum;
        }
    }
    public long Failed => Interlocked.Read(ref _failed);
    public long BytesRead => Interlocked.Read(ref _bytesRead);
    public long BytesWritten => Interlocked.Read(ref _bytesWritten);
    public int InFlight => Volatile.Read(ref _inflight);

    /// <summary>Takes the ring features from the negotiated set (only while stopped: they apply at the next start).</summary>
    public void ApplyFeatures(ulong features)
    {
        if (_worker is not null)
        {
            return;
        }
        IndirectNegotiated = (features & 1UL << Virtio.FRingIndirectDesc) != 0;
        EventIdxNegotiated = (features & 1UL << Virtio.FRingEventIdx) != 0;
    }

    public void SetEnabled(bool enabled)
    {
        _enabled = enabled;
        if (enabled && _wakeFd >= 0)
        {
            Native.Signal(_wakeFd);
        }
    }

    /// <summary>Replaces the call eventfd (QEMU swaps it when it masks interrupts); closes the old one.</summary>
    public void SetCallFd(int fd)
    {
        SwapUnderUsedLock(ref _callFd, fd);
        if (_worker is not null)
        {
            SignalGuest();
        }
    }

    /// <summary>
    /// One interrupt whatever EVENT_IDX says: used entries may have been published while nobody listened
    /// (a previous back-end completing requests while it stopped, after QEMU had stopped watching its
    /// call fd), and a guest waiting for them would wait forever. A spurious one costs the guest a look.
    /// </summary>
    private void SignalGuest()
    {
        lock (_usedLock)
        {
            if (_callFd >= 0 && _usedIdx != 0) // a ring nothing was ever used on has nothing to see
            {
                Native.Signal(_callFd);
            }
        }
    }

    public void SetErrFd(int fd) => SwapUnderUsedLock(ref ErrFd, fd);

    /// <summary>Completions signal these fds under the used lock: swap there so none signals a closed (or reused) descriptor.</summary>
    private void SwapUnderUsedLock(ref int slot, int fd)
    {
        int old;
        lock (_usedLock)
        {
            old = slot;
            slot = fd;
        }
        Native.CloseQuietly(ref old);
    }

    public void SetKickFd(int fd)
    {
        int old = KickFd;
        KickFd = fd;
        Native.CloseQuietly(ref old);
    }

    /// <summary>Starts serving the ring with the given memory; false and a reason if its addresses do not translate.</summary>
    public bool TryStart(GuestMemory memory, out string? error)
    {
        if (_worker is not null)
        {
            error = null;
            return true;
        }
        if (Size == 0 || !AddressesSet)
        {
            error = $"queue {Index}: started before its size and addresses were set";
            return false;
        }
        if (KickFd < 0)
        {
            error = $"queue {Index}: no kick eventfd (polling mode is not supported)";
            return false;
        }
        ulong size = (ulong)Size;
        if (!memory.TryTranslateUser(DescUserAddress, VringDescSize * size, out nint desc) ||
            !memory.TryTranslateUser(AvailUserAddress, 6 + 2 * size, out nint avail) ||
            !memory.TryTranslateUser(UsedUserAddress, 6 + 8 * size, out nint used))
        {
            error = $"queue {Index}: ring addresses (desc 0x{DescUserAddress:x}, avail 0x{AvailUserAddress:x}, used 0x{UsedUserAddress:x}) of {Size} entries are not inside the shared memory";
            return false;
        }
        if ((desc & 15) != 0 || (avail & 1) != 0 || (used & 3) != 0)
        {
            error = $"queue {Index}: misaligned ring addresses";
            return false;
        }
        int wake = Native.EventFd(0, Native.EFD_CLOEXEC | Native.EFD_NONBLOCK);
        if (wake < 0)
        {
            error = $"queue {Index}: eventfd failed: {Native.Describe(Native.LastError)}";
            return false;
        }
        if (_slots.Length != Size)
        {
            foreach (BlkRequest r in _slots)
            {
                r.ReleaseBuffers();
            }
            _slots = new BlkRequest[Size];
            for (int i = 0; i < Size; i++)
            {
                _slots[i] = new BlkRequest(this, (ushort)i);
            }
        }
        _memory = memory;
        _desc = desc;
        _avail = avail;
        _used = used;
        _usedIdx = Volatile.Read(ref *(ushort*)(used + 2));
        _notifiedIdx = _usedIdx;
        _notifiedValid = false;
        RecoverInflight();
        _broken = false;
        BrokenReason = null;
        _stop = false;
        _wakeFd = wake;
        _worker = new Thread(Run) { IsBackground = true, Name = $"vhost-blk q{Index}" };
        _worker.Start();
        // Look at the ring once without waiting for a kick: requests left in flight, and ones the guest
        // made available while no back-end was connected (their kick went nowhere), would wait forever.
        Native.Signal(_wakeFd);
        SignalGuest();
        error = null;
        return true;
    }

    /// <summary>Stops the worker and waits until every request taken off the ring has completed.</summary>
    public void Stop()
    {
        Thread? worker = _worker;
        if (worker is null)
        {
            return;
        }
        _stop = true;
        Native.Signal(_wakeFd);
        worker.Join();
        _worker = null;
        Native.CloseQuietly(ref _wakeFd);
        long start = Environment.TickCount64;
        long nextLog = start + 5000;
        while (Volatile.Read(ref _inflight) > 0)
        {
            Thread.Sleep(1);
            if (Environment.TickCount64 >= nextLog)
            {
                _ctx.Logger.LogWarning("vhost-user-blk queue {Queue}: still waiting for {Count} requests in the device after {Seconds} s",
                    Index, Volatile.Read(ref _inflight), (Environment.TickCount64 - start) / 1000);
                nextLog += 5000;
            }
        }
        _memory = GuestMemory.Empty;
        _desc = _avail = _used = 0;
    }

    public void Dispose()
    {
        Stop();
        SetKickFd(-1);
        SetCallFd(-1);
        SetErrFd(-1);
        foreach (BlkRequest r in _slots)
        {
            r.ReleaseBuffers();
        }
        _slots = [];
    }

    /// <summary>
    /// Reads this queue's in-flight region after a (re)start: requests a previous back-end took
    /// but never completed are queued for resubmission in their original order, and the available
    /// index continues after them (the front-end restores it to the used index after a crash).
    /// </summary>
    private void RecoverInflight()
    {
        _resubmitCount = 0;
        _resubmitNext = 0;
        Resubmitted = 0;
        nint t = _track;
        if (t == 0)
        {
            return;
        }
        if (_trackDescNum != Size)
        {
            _ctx.Logger.LogWarning("vhost-user-blk queue {Queue}: in-flight area made for {Tracked} entries, ring has {Size}; not tracking", Index, _trackDescNum, Size);
            _track = 0;
            return;
        }
        if (*(ushort*)(t + InflightTracking.VersionOffset) != InflightTracking.Version ||
            *(ushort*)(t + InflightTracking.DescNumOffset) != Size)
        {
            InflightTracking.Initialize(t, Size);
        }
        if (*(ushort*)(t + InflightTracking.UsedIdxOffset) != _usedIdx)
        {
            // Stopped between publishing a used entry and clearing its in-flight mark: it is done.
            ushort last = *(ushort*)(t + InflightTracking.LastBatchHeadOffset);
            if (last < Size)
            {
                *(byte*)(t + InflightTracking.HeaderSize + last * InflightTracking.DescStateSize) = 0;
            }
            *(ushort*)(t + InflightTracking.UsedIdxOffset) = _usedIdx;
        }
        if (_resubmit.Length != Size)
        {
            _resubmit = new ushort[Size];
        }
        var found = new List<(ulong Counter, ushort Head)>();
        ulong maxCounter = 0;
        for (int i = 0; i < Size; i++)
        {
            byte* d = (byte*)(t + InflightTracking.HeaderSize + i * InflightTracking.DescStateSize);
            ulong counter = *(ulong*)(d + InflightTracking.CounterOffset);
            maxCounter = Math.Max(maxCounter, counter);
            if (d[InflightTracking.InflightOffset] != 0)
            {
                found.Add((counter, (ushort)i));
            }
        }
        _trackCounter = maxCounter + 1;
        _ctx.Logger.LogDebug("vhost-user-blk queue {Queue}: in-flight area: used index {Used}, base {Base}, available index {Avail}, {Count} in flight",
            Index, _usedIdx, LastAvail, Volatile.Read(ref *(ushort*)(_avail + 2)), found.Count);
        // Every request taken off the ring is either used or marked here, so the ring continues after
        // both. The base the front-end sent cannot say that: when it lost the previous back-end without
        // GET_VRING_BASE, QEMU sends the used index it saw then, and that back-end may have completed
        // more while stopping; starting there would run those requests (writes included) a second time.
        ushort next = (ushort)(_usedIdx + found.Count);
        if (next != LastAvail)
        {
            _ctx.Logger.LogInformation("vhost-user-blk queue {Queue}: continuing the ring at {Next} (used index {Used} + {Count} in flight), not at the front-end's base {Base}",
                Index, next, _usedIdx, found.Count, LastAvail);
            LastAvail = next;
        }
        if (found.Count == 0)
        {
            return;
        }
        found.Sort();
        foreach ((_, ushort head) in found)
        {
            _resubmit[_resubmitCount++] = head;
        }
        Resubmitted = _resubmitCount;
        _ctx.Logger.LogWarning("vhost-user-blk queue {Queue}: resubmitting {Count} requests left in flight by the previous back-end", Index, _resubmitCount);
    }

    private byte* TrackState(ushort head) => (byte*)(_track + InflightTracking.HeaderSize + head * InflightTracking.DescStateSize);

    /// <summary>Bytes the worker thread has allocated since it started (tests check the I/O path allocates nothing).</summary>
    internal long WorkerAllocatedBytes => Volatile.Read(ref _workerAllocated);
    private long _workerAllocated;

    private void Run()
    {
        Native.PollFd* fds = stackalloc Native.PollFd[2];
        long allocatedAtStart = GC.GetAllocatedBytesForCurrentThread();
        while (!_stop)
        {
            Volatile.Write(ref _workerAllocated, GC.GetAllocatedBytesForCurrentThread() - allocatedAtStart);
            fds[0] = new Native.PollFd { Fd = KickFd, Events = Native.POLLIN };
            fds[1] = new Native.PollFd { Fd = _wakeFd, Events = Native.POLLIN };
            int n = Native.Poll(fds, 2, -1);
            if (n < 0)
            {
                int errno = Native.LastError;
                if (errno == Native.EINTR)
                {
                    continue;
                }
                Break($"poll on the kick eventfd failed: {Native.Describe(errno)}");
                return;
            }
            if (fds[0].Revents != 0)
            {
                if ((fds[0].Revents & Native.POLLIN) == 0)
                {
                    // POLLERR/POLLNVAL: the kick fd is unusable; wait for the front-end to replace it.
                    Break("the kick eventfd reports an error");
                    WaitForStop(fds);
                    return;
                }
                Native.Drain(KickFd);
            }
            if (fds[1].Revents != 0)
            {
                Native.Drain(_wakeFd);
            }
            if (_stop)
            {
                break;
            }
            if (_enabled && !_broken)
            {
                try
                {
                    ProcessAvailable();
                }
                catch (Exception e)
                {
                    // A bug must not take the daemon down: this queue stops, the rest keeps going.
                    _ctx.Logger.LogError(e, "vhost-user-blk queue {Queue}: unexpected failure", Index);
                    Break("internal error: " + e.Message);
                }
            }
        }
    }

    private void WaitForStop(Native.PollFd* fds)
    {
        while (!_stop)
        {
            fds[0] = new Native.PollFd { Fd = _wakeFd, Events = Native.POLLIN };
            if (Native.Poll(fds, 1, -1) > 0)
            {
                Native.Drain(_wakeFd);
            }
        }
    }

    private void Break(string reason)
    {
        if (_broken)
        {
            return;
        }
        BrokenReason = reason;
        _broken = true;
        _ctx.Logger.LogError("vhost-user-blk queue {Queue}: stopped, the ring is broken: {Reason}. It stays stopped until the front-end restarts it.", Index, reason);
        lock (_usedLock)
        {
            Native.Signal(ErrFd);
        }
    }

    private void LogBadRequest(ushort head, string reason)
    {
        if (_badLogged < MaxLoggedBadRequests)
        {
            _badLogged++;
            _ctx.Logger.LogWarning("vhost-user-blk queue {Queue}: request at descriptor {Head} failed with IOERR: {Reason}{More}",
                Index, head, reason, _badLogged == MaxLoggedBadRequests ? " (further bad requests on this queue are not logged)" : "");
        }
    }

    internal void LogDeviceException(Exception e) =>
        _ctx.Logger.LogError(e, "vhost-user-blk queue {Queue}: the block device threw; the request fails with IOERR", Index);

    private void ProcessAvailable()
    {
        try
        {
            int mask = Size - 1;
            while (_resubmitNext < _resubmitCount && !_broken)
            {
                Handle(_slots[_resubmit[_resubmitNext++]]);
            }
            while (!_stop)
            {
                ushort availIdx = Volatile.Read(ref *(ushort*)(_avail + 2));
                ushort pending = (ushort)(availIdx - LastAvail);
                if (pending == 0)
                {
                    if (!EventIdxNegotiated)
                    {
                        return;
                    }
                    // Ask for a kick at the next entry, then look again: an entry added before the
                    // driver saw avail_event would otherwise wait for a kick that never comes.
                    Volatile.Write(ref *(ushort*)(_used + 4 + 8 * Size), LastAvail);
                    Interlocked.MemoryBarrier();
                    if (Volatile.Read(ref *(ushort*)(_avail + 2)) == LastAvail)
                    {
                        return;
                    }
                    continue;
                }
                if (pending > Size)
                {
                    Break($"the available index {availIdx} is {pending} entries ahead of the last one served ({LastAvail}), more than the ring's {Size}");
                    return;
                }
                while (LastAvail != availIdx)
                {
                    ushort head = Volatile.Read(ref *(ushort*)(_avail + 4 + 2 * (LastAvail & mask)));
                    if (head >= Size)
                    {
                        Break($"available ring entry {LastAvail} names descriptor {head}, beyond the ring's {Size}");
                        return;
                    }
                    BlkRequest r = _slots[head];
                    if (r.InFlight)
                    {
                        Break($"descriptor {head} was made available again while its request is still in flight");
                        return;
                    }
                    LastAvail++;
                    Handle(r);
                    if (_broken)
                    {
                        return;
                    }
                }
            }
        }
        finally
        {
            FlushSignal();
        }
    }

    private void FlushSignal()
    {
        lock (_usedLock)
        {
            if (_signalPending)
            {
                _signalPending = false;
                if (NeedsSignal())
                {
                    Native.Signal(_callFd);
                }
            }
        }
    }

    private void Handle(BlkRequest r)
    {
        r.Reset();
        r.InFlight = true;
        Interlocked.Increment(ref _inflight);
        if (_track != 0)
        {
            byte* state = TrackState(r.Head);
            *(ulong*)(state + InflightTracking.CounterOffset) = _trackCounter++;
            Volatile.Write(ref state[InflightTracking.InflightOffset], (byte)1);
        }
        string? structural = ParseChain(r, out string? content);
        if (structural is not null)
        {
            if (_track != 0)
            {
                Volatile.Write(ref TrackState(r.Head)[InflightTracking.InflightOffset], (byte)0);
            }
            r.InFlight = false;
            Interlocked.Decrement(ref _inflight);
            Break(structural);
            return;
        }
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

    /// <summary>
    /// Walks the chain from r.Head into r's segment lists. Returns a reason when the chain cannot
    /// be walked or has no status byte (the ring is broken); sets content to a reason when the chain
    /// is walkable but unusable (the request fails with IOERR).
    /// </summary>
    private string? ParseChain(BlkRequest r, out string? content)
    {
        content = null;
        nint table = _desc;
        int tableSize = Size;
        int index = r.Head;
        int budget = Size;
        bool indirect = false;
        bool sawWritable = false;
        GuestMemory memory = _memory;
        while (true)
        {
            if (budget-- == 0)
            {
                return $"the descriptor chain from head {r.Head} has more entries than its table ({tableSize}): it loops";
            }
            byte* d = (byte*)(table + index * VringDescSize);
            // Each field is read once: the guest may change the descriptor under our feet.
            ulong addr = *(ulong*)d;
            uint len = *(uint*)(d + 8);
            ushort flags = *(ushort*)(d + 12);
            ushort next = *(ushort*)(d + 14);
            if ((flags & Virtio.DescFIndirect) != 0)
            {
                if (!IndirectNegotiated)
                {
                    return $"descriptor {index} of head {r.Head} is indirect, but VIRTIO_RING_F_INDIRECT_DESC was not negotiated";
                }
                if (indirect)
                {
                    return $"indirect descriptor {index} of head {r.Head} sits inside an indirect table";
                }
                if ((flags & Virtio.DescFNext) != 0)
                {
                    return $"indirect descriptor {index} of head {r.Head} also has NEXT set";
                }
                if (len == 0 || len % VringDescSize != 0 || len / VringDescSize > MaxIndirectDescriptors)
                {
                    return $"indirect table of head {r.Head} has a length of {len} bytes (a multiple of 16 up to {MaxIndirectDescriptors} entries is required)";
                }
                if (!memory.TryTranslate(addr, len, out nint t) || (t & 15) != 0)
                {
                    return $"indirect table of head {r.Head} at 0x{addr:x} (+{len}) is outside guest memory or misaligned";
                }
                table = t;
                tableSize = (int)(len / VringDescSize);
                index = 0;
                budget = tableSize;
                indirect = true;
                continue;
            }
            bool writable = (flags & Virtio.DescFWrite) != 0;
            if (writable)
            {
                sawWritable = true;
            }
            else if (sawWritable)
            {
                content ??= $"descriptor {index} is device-readable but follows a device-writable one";
            }
            if (len > (uint)_ctx.MaxTransferBytes + 64)
            {
                content ??= $"descriptor {index} is {len} bytes long, more than the largest transfer ({_ctx.MaxTransferBytes})";
                r.AddSegment(writable, 0, 0);
            }
            else if (!memory.TryTranslate(addr, len, out nint host))
            {
                content ??= $"descriptor {index} (0x{addr:x}, {len} bytes) is not inside guest memory";
                r.AddSegment(writable, 0, 0);
            }
            else
            {
                r.AddSegment(writable, host, (int)len);
            }
            if ((flags & Virtio.DescFNext) == 0)
            {
                break;
            }
            if (next >= tableSize)
            {
                return $"descriptor {index} of head {r.Head} links to {next}, beyond its table of {tableSize}";
            }
            index = next;
        }
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

    private void Execute(BlkRequest r)
    {
        Span<byte> header = stackalloc byte[Virtio.BlkOutHdrSize];
        if (!CopyFrom(r.Readable, r.ReadableCount, 0, header))
        {
            Fail(r, $"the request header needs 16 device-readable bytes, the chain has {r.ReadableBytes}", Virtio.BlkSIoErr);
            return;
        }
        r.Type = BinaryPrimitives.ReadUInt32LittleEndian(header);
        r.Sector = BinaryPrimitives.ReadUInt64LittleEndian(header[8..]);
        IBlockDevice device = _ctx.Device;
        switch (r.Type)
        {
            case Virtio.BlkTIn:
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
                    r.UsesBounce = true;
                    buffer = r.EnsureBounce(r.DataLength).Memory[..r.DataLength];
                }
                r.UsedLength = (uint)(r.DataLength + 1);
                Submit(r, device.ReadAsync(r.Lba, buffer));
                return;
            }
            case Virtio.BlkTOut:
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
                if (TryContiguous(r.Readable, r.ReadableCount, Virtio.BlkOutHdrSize, r.DataLength, out nint pointer))
                {
                    data = r.GuestBuffer.Retarget(pointer, r.DataLength);
                }
                else
                {
                    AlignedBuffer bounce = r.EnsureBounce(r.DataLength);
                    CopyFrom(r.Readable, r.ReadableCount, Virtio.BlkOutHdrSize, bounce.Span[..r.DataLength]);
                    data = bounce.Memory[..r.DataLength];
                }
                r.UsedLength = 1;
                Submit(r, device.WriteAsync(r.Lba, data, fua: false));
                return;
            }
            case Virtio.BlkTFlush:
                r.UsedLength = 1;
                Submit(r, device.FlushAsync());
                return;
            case Virtio.BlkTGetId:
            {
                int n = (int)Math.Min(Virtio.BlkIdBytes, r.WritableBytes - 1);
                if (n <= 0)
                {
                    Fail(r, "GET_ID without room for the serial number", Virtio.BlkSIoErr);
                    return;
                }
                CopyTo(r.Writable, r.WritableCount, 0, _ctx.Serial.AsSpan(0, n));
                r.UsedLength = (uint)(n + 1);
                Complete(r, Virtio.BlkSOk, fromWorker: true);
                return;
            }
            case Virtio.BlkTDiscard:
            case Virtio.BlkTWriteZeroes:
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
                CopyFrom(r.Readable, r.ReadableCount, Virtio.BlkOutHdrSize, r.Ranges.AsSpan(0, (int)length));
                r.UsedLength = 1;
                RunRanges(r, fromWorker: true);
                return;
            }
            default:
                r.UsedLength = 1;
                Complete(r, Virtio.BlkSUnsupp, fromWorker: true);
                return;
        }
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

    private void RunRanges(BlkRequest r, bool fromWorker)
    {
        bool discard = r.Type == Virtio.BlkTDiscard;
        int blockSize = _ctx.BlockSize;
        while (r.RangeIndex < r.RangeCount)
        {
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
        r.Awaiter = op.GetAwaiter();
        r.Awaiter.UnsafeOnCompleted(r.Continuation);
    }

    /// <summary>A device operation finished on another thread.</summary>
    internal void OnDeviceCompleted(BlkRequest r, BlockStatus status)
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
        if (s == Virtio.BlkSOk && r.UsesBounce && r.Type == Virtio.BlkTIn)
        {
            CopyTo(r.Writable, r.WritableCount, 0, r.Bounce!.Span[..r.DataLength]);
        }
        if (s != Virtio.BlkSOk)
        {
            r.UsedLength = 1;
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
        lock (_usedLock)
        {
            nint track = _track;
            if (track != 0)
            {
                Volatile.Write(ref *(ushort*)(track + InflightTracking.LastBatchHeadOffset), r.Head);
            }
            byte* element = (byte*)(_used + 4 + 8 * (_usedIdx & (Size - 1)));
            *(uint*)element = r.Head;
            *(uint*)(element + 4) = r.UsedLength;
            r.InFlight = false;
            _usedIdx++;
            Volatile.Write(ref *(ushort*)(_used + 2), _usedIdx);
            if (track != 0)
            {
                Volatile.Write(ref TrackState(r.Head)[InflightTracking.InflightOffset], (byte)0);
                Volatile.Write(ref *(ushort*)(track + InflightTracking.UsedIdxOffset), _usedIdx);
            }
            if (fromWorker)
            {
                _signalPending = true;
            }
            else if (NeedsSignal())
            {
                Native.Signal(_callFd);
            }
        }
        Interlocked.Increment(ref _completed);
        Interlocked.Decrement(ref _inflight);
    }

    /// <summary>
    /// Whether the used entries added since the last decision warrant an interrupt (called under
    /// the used lock). Without EVENT_IDX: always (the driver's NO_INTERRUPT flag is only a hint).
    /// With it: when the used index passed the driver's used_event (virtio 1.1, 2.7.10).
    /// </summary>
    private bool NeedsSignal()
    {
        if (!EventIdxNegotiated)
        {
            return true;
        }
        Interlocked.MemoryBarrier(); // our used index store before reading used_event
        ushort usedEvent = Volatile.Read(ref *(ushort*)(_avail + 4 + 2 * Size));
        ushort current = _usedIdx;
        ushort old = _notifiedIdx;
        _notifiedIdx = current;
        if (!_notifiedValid)
        {
            _notifiedValid = true; // "old" is where this back-end started, not what the guest was told
            return true;
        }
        return (ushort)(current - usedEvent - 1) < (ushort)(current - old);
    }

    // Scatter/gather over translated segments ---------------------------------------------------

    /// <summary>Copies destination.Length bytes starting at byte offset of the segments' concatenation.</summary>
    internal static bool CopyFrom(Segment[] segments, int count, long offset, Span<byte> destination)
    {
        int done = 0;
        for (int i = 0; i < count && done < destination.Length; i++)
        {
            Segment s = segments[i];
            if (offset >= s.Length)
            {
                offset -= s.Length;
                continue;
            }
            int n = (int)Math.Min(s.Length - offset, destination.Length - done);
            new ReadOnlySpan<byte>((byte*)s.Pointer + offset, n).CopyTo(destination[done..]);
            done += n;
            offset = 0;
        }
        return done == destination.Length;
    }

    internal static bool CopyTo(Segment[] segments, int count, long offset, ReadOnlySpan<byte> source)
    {
        int done = 0;
        for (int i = 0; i < count && done < source.Length; i++)
        {
            Segment s = segments[i];
            if (offset >= s.Length)
            {
                offset -= s.Length;
                continue;
            }
            int n = (int)Math.Min(s.Length - offset, source.Length - done);
            source.Slice(done, n).CopyTo(new Span<byte>((byte*)s.Pointer + offset, n));
            done += n;
            offset = 0;
        }
        return done == source.Length;
    }

    private static bool TryContiguous(Segment[] segments, int count, long offset, int length, out nint pointer)
    {
        for (int i = 0; i < count; i++)
        {
            Segment s = segments[i];
            if (offset >= s.Length)
            {
                offset -= s.Length;
                continue;
            }
            if (s.Length - offset >= length)
            {
                pointer = s.Pointer + (nint)offset;
                return true;
            }
            break;
        }
        pointer = 0;
        return false;
    }
}
