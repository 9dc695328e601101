using Microsoft.Extensions.Logging;

namespace EdgeBlock.Transports.VhostUser;

/// <summary>
/// One split virtqueue of a virtio-blk device: its lifecycle (configure while stopped, start on
/// a memory table, stop and drain) and the device's side of the available ring. The parts:
/// <see cref="SplitRing"/> (layout), <see cref="DescriptorChain"/> (walking chains),
/// <see cref="UsedRing"/> (used ring and interrupts, EVENT_IDX), <see cref="InflightRegion"/>
/// (requests in flight across back-end restarts), <see cref="KickPoller"/> (the thread) and
/// <see cref="VirtioBlkHandler"/> (what a chain means to a block device).
///
/// Bad input never reaches memory outside the guest's mappings: a request with a bad address,
/// wrong lengths or misordered descriptors completes with VIRTIO_BLK_S_IOERR; a ring whose
/// structure is broken (head or next index out of range, a loop, no status byte, an avail index
/// running ahead) stops this queue with a logged reason and a signal on the error eventfd,
/// until the front-end restarts it. Other queues and devices are not affected.
/// </summary>
internal sealed class VirtQueue : IDisposable
{
    private readonly BlkDeviceContext _ctx;
    private readonly VirtioBlkHandler _blk;
    private readonly UsedRing _usedRing = new();
    private readonly KickPoller _poller;
    private readonly DrainDeadline _deadline;

    // Written by the connection's message thread while the queue is stopped.
    private VirtqConfig _config = VirtqConfig.Unset;
    private ushort _lastAvail;
    private int _kickFd = -1;
    private nint _trackRegion;
    private int _trackDescNum;
    private volatile bool _enabled;

    // Running state, fixed from a start to the next stop.
    private VirtqConfig _running = VirtqConfig.Unset;
    private GuestMemory _memory = GuestMemory.Empty;
    private SplitRing _ring;
    private InflightRegion _track;
    private ulong _trackCounter;
    private BlkRequest[] _slots = [];
    private ushort[] _resubmit = [];
    private int _resubmitNext;
    private volatile bool _broken;
    private int _inflight;
    private long _completed;
    private bool _abandonLogged;

    public VirtQueue(int index, BlkDeviceContext ctx, DrainDeadline deadline)
    {
        Index = index;
        _ctx = ctx;
        _deadline = deadline;
        _blk = new VirtioBlkHandler(this, ctx);
        _poller = new KickPoller($"vhost-blk q{index}", OnKick, Break);
    }

    public int Index { get; }
    public VirtqConfig Config => _config;
    public bool Running => _poller.Running;
    public bool Enabled => _enabled;
    public bool Broken => _broken;
    public string? BrokenReason { get; private set; }

    /// <summary>last_avail_idx: the next available ring entry to serve (VHOST_USER_SET/GET_VRING_BASE).</summary>
    public ushort LastAvail => _lastAvail;

    public long Completed => Interlocked.Read(ref _completed);
    public long Failed => _blk.Failed;
    public long BytesRead => _blk.BytesRead;
    public long BytesWritten => _blk.BytesWritten;
    public int InFlight => Volatile.Read(ref _inflight);

    /// <summary>Requests found in flight in the tracking area at the last start (resubmitted).</summary>
    public int Resubmitted => _resubmit.Length;

    /// <summary>Bytes the queue's thread has allocated since it started (tests check the I/O path allocates nothing).</summary>
    internal long WorkerAllocatedBytes => _poller.AllocatedBytes;

    /// <summary>Takes a new configuration; only while stopped (the caller checks), it applies at the next start.</summary>
    public void Configure(VirtqConfig config)
    {
        if (Running)
        {
            throw new InvalidOperationException($"queue {Index} is configured while it runs");
        }
        _config = config;
    }

    /// <summary>Takes the ring features from the negotiated set (only while stopped: they apply at the next start).</summary>
    public void ApplyFeatures(ulong features)
    {
        if (!Running)
        {
            _config = _config.WithFeatures(features);
        }
    }

    /// <summary>SET_VRING_BASE: where serving continues at the next start; only while stopped (the caller checks).</summary>
    public void SetBase(ushort lastAvail)
    {
        if (Running)
        {
            throw new InvalidOperationException($"queue {Index} gets a base while it runs");
        }
        _lastAvail = lastAvail;
    }

    /// <summary>Sets (or clears, with 0) this queue's region of the in-flight area; only while stopped.</summary>
    public void SetInflightRegion(nint region, int descNum)
    {
        if (!Running)
        {
            _trackRegion = region;
            _trackDescNum = descNum;
        }
    }

    public void SetEnabled(bool enabled)
    {
        _enabled = enabled;
        if (enabled)
        {
            _poller.Wake();
        }
    }

    /// <summary>Replaces the call eventfd (QEMU swaps it when it masks interrupts); closes the old one.</summary>
    public void SetCallFd(int fd)
    {
        _usedRing.SetCallFd(fd);
        if (Running)
        {
            _usedRing.SignalGuest();
        }
    }

    public void SetErrFd(int fd) => _usedRing.SetErrFd(fd);

    public void SetKickFd(int fd)
    {
        int old = _kickFd;
        _kickFd = fd;
        Native.CloseQuietly(ref old);
    }

    /// <summary>Starts serving the ring with the given memory; false and a reason if its addresses do not translate.</summary>
    public bool TryStart(GuestMemory memory, out string? error)
    {
        if (Running)
        {
            error = null;
            return true;
        }
        VirtqConfig config = _config;
        if (config.Size == 0 || !config.AddressesSet)
        {
            error = $"queue {Index}: started before its size and addresses were set";
            return false;
        }
        if (_kickFd < 0)
        {
            error = $"queue {Index}: no kick eventfd (polling mode is not supported)";
            return false;
        }
        if (!SplitRing.TryMap(memory, config, out SplitRing ring, out string? ringError))
        {
            error = $"queue {Index}: {ringError}";
            return false;
        }
        if (!_poller.TryPrepare(out string? pollError))
        {
            error = $"queue {Index}: eventfd failed: {pollError}";
            return false;
        }
        if (_slots.Length != config.Size)
        {
            ReleaseSlots();
            _slots = new BlkRequest[config.Size];
            for (int i = 0; i < config.Size; i++)
            {
                _slots[i] = new BlkRequest(_blk, (ushort)i);
            }
        }
        _running = config;
        _memory = memory;
        _ring = ring;
        ushort usedIdx = ring.UsedIdx;
        RecoverInflight(usedIdx);
        _usedRing.Start(ring, _track, config.EventIdx, usedIdx);
        _broken = false;
        BrokenReason = null;
        _poller.Start(_kickFd);
        // Look at the ring once without waiting for a kick: requests left in flight, and ones the guest
        // made available while no back-end was connected (their kick went nowhere), would wait forever.
        _poller.Wake();
        _usedRing.SignalGuest();
        error = null;
        return true;
    }

    /// <summary>
    /// Stops the worker and waits until every request taken off the ring has completed. False when
    /// the connection's drain deadline passed first: the requests still in the device keep the ring
    /// (their completions publish on it later), so their memory must stay mapped.
    /// </summary>
    public bool Stop()
    {
        _poller.Stop();
        if (!WaitForDevice())
        {
            return false;
        }
        _usedRing.Stop();
        _memory = GuestMemory.Empty;
        _ring = default;
        _track = default;
        return true;
    }

    private bool WaitForDevice()
    {
        long start = Environment.TickCount64;
        long nextLog = start + 5000;
        while (Volatile.Read(ref _inflight) > 0)
        {
            if (_deadline.Passed)
            {
                if (!_abandonLogged)
                {
                    _abandonLogged = true;
                    _ctx.Logger.LogError("vhost-user-blk queue {Queue}: stopping without waiting any longer: {Count} requests still in flight in the device",
                        Index, Volatile.Read(ref _inflight));
                }
                return false;
            }
            Thread.Sleep(1);
            if (Environment.TickCount64 >= nextLog)
            {
                _ctx.Logger.LogWarning("vhost-user-blk queue {Queue}: still waiting for {Count} requests in the device after {Seconds} s",
                    Index, Volatile.Read(ref _inflight), (Environment.TickCount64 - start) / 1000);
                nextLog += 5000;
            }
        }
        return true;
    }

    /// <summary>Stops (see <see cref="Stop"/>) and closes the fds; buffers a late completion may still use are kept.</summary>
    public void Dispose()
    {
        bool drained = Stop();
        SetKickFd(-1);
        SetCallFd(-1);
        SetErrFd(-1);
        if (drained)
        {
            ReleaseSlots();
            _slots = [];
        }
    }

    private void ReleaseSlots()
    {
        foreach (BlkRequest r in _slots)
        {
            r.ReleaseBuffers();
        }
    }

    /// <summary>
    /// Reads this queue's in-flight region after a (re)start: requests a previous back-end took
    /// but never completed are queued for resubmission in their original order, and the available
    /// index continues after them (the front-end restores it to the used index after a crash).
    /// </summary>
    private void RecoverInflight(ushort usedIdx)
    {
        _resubmit = [];
        _resubmitNext = 0;
        _track = default;
        int size = _running.Size;
        if (_trackRegion == 0)
        {
            return;
        }
        if (_trackDescNum != size)
        {
            _ctx.Logger.LogWarning("vhost-user-blk queue {Queue}: in-flight area made for {Tracked} entries, ring has {Size}; not tracking", Index, _trackDescNum, size);
            _trackRegion = 0;
            return;
        }
        _track = new InflightRegion(_trackRegion);
        ushort[] found = _track.Recover(size, usedIdx, out _trackCounter);
        _ctx.Logger.LogDebug("vhost-user-blk queue {Queue}: in-flight area: used index {Used}, base {Base}, available index {Avail}, {Count} in flight",
            Index, usedIdx, _lastAvail, _ring.AvailIdx, found.Length);
        // Every request taken off the ring is either used or marked here, so the ring continues after
        // both. The base the front-end sent cannot say that: when it lost the previous back-end without
        // GET_VRING_BASE, QEMU sends the used index it saw then, and that back-end may have completed
        // more while stopping; starting there would run those requests (writes included) a second time.
        ushort next = (ushort)(usedIdx + found.Length);
        if (next != _lastAvail)
        {
            _ctx.Logger.LogInformation("vhost-user-blk queue {Queue}: continuing the ring at {Next} (used index {Used} + {Count} in flight), not at the front-end's base {Base}",
                Index, next, usedIdx, found.Length, _lastAvail);
            _lastAvail = next;
        }
        if (found.Length == 0)
        {
            return;
        }
        _resubmit = found;
        _ctx.Logger.LogWarning("vhost-user-blk queue {Queue}: resubmitting {Count} requests left in flight by the previous back-end", Index, found.Length);
    }

    private void OnKick()
    {
        if (!_enabled || _broken)
        {
            return;
        }
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

    private void Break(string reason)
    {
        if (_broken)
        {
            return;
        }
        BrokenReason = reason;
        _broken = true;
        _ctx.Logger.LogError("vhost-user-blk queue {Queue}: stopped, the ring is broken: {Reason}. It stays stopped until the front-end restarts it.", Index, reason);
        _usedRing.SignalError();
    }

    /// <summary>Serves the available ring (2.6.6) until it is empty, then sends one interrupt for the batch.</summary>
    private void ProcessAvailable()
    {
        try
        {
            while (_resubmitNext < _resubmit.Length && !_broken)
            {
                Handle(_slots[_resubmit[_resubmitNext++]]);
            }
            int size = _ring.Size;
            while (!_poller.StopRequested)
            {
                ushort availIdx = _ring.AvailIdx;
                ushort pending = (ushort)(availIdx - _lastAvail);
                if (pending == 0)
                {
                    if (!_running.EventIdx)
                    {
                        return;
                    }
                    // Ask for a kick at the next entry, then look again: an entry added before the
                    // driver saw avail_event would otherwise wait for a kick that never comes.
                    _ring.SetAvailEvent(_lastAvail);
                    Interlocked.MemoryBarrier();
                    if (_ring.AvailIdx == _lastAvail)
                    {
                        return;
                    }
                    continue;
                }
                if (pending > size)
                {
                    Break($"the available index {availIdx} is {pending} entries ahead of the last one served ({_lastAvail}), more than the ring's {size}");
                    return;
                }
                while (_lastAvail != availIdx)
                {
                    ushort head = _ring.AvailRing(_lastAvail);
                    if (head >= size)
                    {
                        Break($"available ring entry {_lastAvail} names descriptor {head}, beyond the ring's {size}");
                        return;
                    }
                    BlkRequest r = _slots[head];
                    if (r.InFlight)
                    {
                        Break($"descriptor {head} was made available again while its request is still in flight");
                        return;
                    }
                    _lastAvail++;
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
            _usedRing.FlushSignal();
        }
    }

    /// <summary>Takes the chain at r.Head: marks it in flight, walks it, and gives it to the block handler.</summary>
    private void Handle(BlkRequest r)
    {
        r.Reset();
        r.InFlight = true;
        Interlocked.Increment(ref _inflight);
        if (_track.IsMapped)
        {
            _track.MarkInflight(r.Head, _trackCounter++);
        }
        string? structural = DescriptorChain.Walk(_ring, _memory, _running.IndirectDesc, _ctx.MaxTransferBytes, r, out string? content)
            ?? VirtioBlkHandler.LocateStatus(r);
        if (structural is not null)
        {
            // Nothing is published for a chain the ring cannot describe: it is not in flight either.
            if (_track.IsMapped)
            {
                _track.ClearInflight(r.Head);
            }
            r.InFlight = false;
            Interlocked.Decrement(ref _inflight);
            Break(structural);
            return;
        }
        _blk.Handle(r, content);
    }

    /// <summary>Returns a finished chain to the driver (the block handler wrote its status byte).</summary>
    internal void PushUsed(BlkRequest r, bool fromWorker)
    {
        _usedRing.Publish(r, fromWorker);
        Interlocked.Increment(ref _completed);
        Interlocked.Decrement(ref _inflight);
    }
}
