namespace EdgeBlock.Transports.VhostUser;

/// <summary>
/// The device side of a split ring's used ring (2.6.8) and of used buffer notifications
/// (2.6.7.2, 2.7.10): completions, from the queue's thread or the device's, publish used
/// elements and decide under one lock whether the driver gets an interrupt on the call eventfd.
/// The error eventfd lives here too because it is signalled under the same lock: each fd is
/// swapped under it, so no signal goes to a closed (or reused) descriptor.
/// </summary>
internal sealed class UsedRing
{
    private readonly object _lock = new();
    private SplitRing _ring;
    private InflightRegion _track;
    private bool _eventIdx;
    private ushort _usedIdx;
    private ushort _notifiedIdx; // used index when we last decided whether to signal (EVENT_IDX's "old")
    private bool _notifiedValid; // false after a start: the guest's used_event may predate this back-end
    private bool _signalPending;
    private int _callFd = -1;
    private int _errFd = -1;

    /// <summary>Starts publishing on ring after usedIdx (the index found in guest memory).</summary>
    public void Start(in SplitRing ring, InflightRegion track, bool eventIdx, ushort usedIdx)
    {
        lock (_lock)
        {
            _ring = ring;
            _track = track;
            _eventIdx = eventIdx;
            _usedIdx = _notifiedIdx = usedIdx;
            _notifiedValid = _signalPending = false;
        }
    }

    /// <summary>Forgets the ring (after every request drained: nothing publishes any more).</summary>
    public void Stop()
    {
        lock (_lock)
        {
            _ring = default;
            _track = default;
        }
    }

    /// <summary>
    /// Puts e's head on the used ring. From the queue's thread the interrupt waits for the end of
    /// the batch (FlushSignal); from the device's thread it is decided at once.
    /// </summary>
    public void Publish(VirtqElement e, bool fromWorker)
    {
        lock (_lock)
        {
            InflightRegion track = _track;
            if (track.IsMapped)
            {
                track.SetLastBatchHead(e.Head);
            }
            _ring.WriteUsedElem(_usedIdx, e.Head, e.UsedLength);
            e.InFlight = false;
            _usedIdx++;
            _ring.PublishUsedIdx(_usedIdx);
            if (track.IsMapped)
            {
                track.ClearInflight(e.Head);
                track.SetUsedIdx(_usedIdx);
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
    }

    /// <summary>Ends a batch of the queue's thread: one interrupt for whatever it published.</summary>
    public void FlushSignal()
    {
        lock (_lock)
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

    /// <summary>
    /// One interrupt whatever EVENT_IDX says: used entries may have been published while nobody listened
    /// (a previous back-end completing requests while it stopped, after QEMU had stopped watching its
    /// call fd), and a guest waiting for them would wait forever. A spurious one costs the guest a look.
    /// </summary>
    public void SignalGuest()
    {
        lock (_lock)
        {
            if (_callFd >= 0 && _usedIdx != 0) // a ring nothing was ever used on has nothing to see
            {
                Native.Signal(_callFd);
            }
        }
    }

    /// <summary>Tells the front-end the ring is broken (VHOST_USER_SET_VRING_ERR's eventfd).</summary>
    public void SignalError()
    {
        lock (_lock)
        {
            Native.Signal(_errFd);
        }
    }

    /// <summary>Replaces the call eventfd (QEMU swaps it when it masks interrupts); closes the old one.</summary>
    public void SetCallFd(int fd) => Swap(ref _callFd, fd);

    public void SetErrFd(int fd) => Swap(ref _errFd, fd);

    private void Swap(ref int slot, int fd)
    {
        int old;
        lock (_lock)
        {
            old = slot;
            slot = fd;
        }
        Native.CloseQuietly(ref old);
    }

    /// <summary>
    /// Whether the used entries added since the last decision warrant an interrupt (called under
    /// the lock). Without EVENT_IDX: always (the driver's NO_INTERRUPT flag is only a hint).
    /// With it: when the used index passed the driver's used_event.
    /// </summary>
    private bool NeedsSignal()
    {
        if (!_eventIdx)
        {
            return true;
        }
        Interlocked.MemoryBarrier(); // our used index store before reading used_event
        ushort usedEvent = _ring.UsedEvent;
        ushort current = _usedIdx;
        ushort old = _notifiedIdx;
        _notifiedIdx = current;
        if (!_notifiedValid)
        {
            _notifiedValid = true; // "old" is where this back-end started, not what the guest was told
            return true;
        }
        return SplitRing.NeedEvent(usedEvent, current, old);
    }
}
