namespace EdgeBlock.Transports.VhostUser;

/// <summary>
/// The thread of one virtqueue: sleeps in poll() on the driver's kick eventfd (available buffer
/// notifications, 2.7.13) and on a private wake eventfd (stop, enable, a look without a kick),
/// and calls the queue each time either fires. Knows nothing of rings or requests.
/// </summary>
internal sealed unsafe class KickPoller
{
    private readonly string _name;
    private readonly Action _onKick;
    private readonly Action<string> _onBroken;
    private Thread? _thread;
    private int _kickFd = -1;
    private int _wakeFd = -1;
    private volatile bool _stop;
    private long _allocated;

    /// <param name="onKick">Runs on the thread after each wake-up (not after a stop).</param>
    /// <param name="onBroken">Runs on the thread when the kick fd fails; the thread then only waits for its stop.</param>
    public KickPoller(string name, Action onKick, Action<string> onBroken)
    {
        _name = name;
        _onKick = onKick;
        _onBroken = onBroken;
    }

    public bool Running => _thread is not null;

    /// <summary>A stop was asked for: the queue leaves its loop over the available ring early.</summary>
    public bool StopRequested => _stop;

    /// <summary>Bytes the thread has allocated since it started (tests check the I/O path allocates nothing).</summary>
    public long AllocatedBytes => Volatile.Read(ref _allocated);

    /// <summary>Creates the wake eventfd, before the queue commits to starting; false and the errno text if it cannot.</summary>
    public bool TryPrepare(out string? error)
    {
        int wake = Native.EventFd(0, Native.EFD_CLOEXEC | Native.EFD_NONBLOCK);
        if (wake < 0)
        {
            error = Native.Describe(Native.LastError);
            return false;
        }
        _wakeFd = wake;
        error = null;
        return true;
    }

    /// <summary>Starts the thread on kickFd (owned by the queue, unchanged while the thread runs).</summary>
    public void Start(int kickFd)
    {
        _kickFd = kickFd;
        _stop = false;
        _thread = new Thread(Run) { IsBackground = true, Name = _name };
        _thread.Start();
    }

    /// <summary>Makes the thread look at the ring once without a kick.</summary>
    public void Wake()
    {
        if (_wakeFd >= 0)
        {
            Native.Signal(_wakeFd);
        }
    }

    /// <summary>Stops and joins the thread: when this returns, nothing is taken off the ring any more.</summary>
    public void Stop()
    {
        Thread? thread = _thread;
        if (thread is null)
        {
            return;
        }
        _stop = true;
        Native.Signal(_wakeFd);
        thread.Join();
        _thread = null;
        Native.CloseQuietly(ref _wakeFd);
    }

    private void Run()
    {
        Native.PollFd* fds = stackalloc Native.PollFd[2];
        long allocatedAtStart = GC.GetAllocatedBytesForCurrentThread();
        while (!_stop)
        {
            Volatile.Write(ref _allocated, GC.GetAllocatedBytesForCurrentThread() - allocatedAtStart);
            fds[0] = new Native.PollFd { Fd = _kickFd, Events = Native.POLLIN };
            fds[1] = new Native.PollFd { Fd = _wakeFd, Events = Native.POLLIN };
            int n = Native.Poll(fds, 2, -1);
            if (n < 0)
            {
                int errno = Native.LastError;
                if (errno == Native.EINTR)
                {
                    continue;
                }
                _onBroken($"poll on the kick eventfd failed: {Native.Describe(errno)}");
                return;
            }
            if (fds[0].Revents != 0)
            {
                if ((fds[0].Revents & Native.POLLIN) == 0)
                {
                    // POLLERR/POLLNVAL: the kick fd is unusable; wait for the front-end to replace it.
                    _onBroken("the kick eventfd reports an error");
                    WaitForStop(fds);
                    return;
                }
                Native.Drain(_kickFd);
            }
            if (fds[1].Revents != 0)
            {
                Native.Drain(_wakeFd);
            }
            if (_stop)
            {
                break;
            }
            _onKick();
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
}
