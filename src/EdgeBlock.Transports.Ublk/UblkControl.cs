namespace EdgeBlock.Transports.Ublk;

/// <summary>
/// /dev/ublk-control: the driver's control commands (ADD_DEV, SET_PARAMS, START_DEV, STOP_DEV, DEL_DEV,
/// GET_DEV_INFO), each a URING_CMD on a small ring of its own, run one at a time and waited for. START_DEV
/// blocks until every queue fetched and the kernel read the partition table through them, so it must not run
/// on a queue's thread.
/// </summary>
internal sealed unsafe class UblkControl : IDisposable
{
    private const uint AnyDevice = uint.MaxValue;
    private const ushort NoQueue = ushort.MaxValue;

    private readonly object _gate = new();
    private readonly int _fd;
    private readonly UringCmdRing _ring;

    private UblkControl(int fd, UringCmdRing ring)
    {
        _fd = fd;
        _ring = ring;
    }

    /// <summary>Opens the control device; a missing one is refused naming the module that provides it.</summary>
    public static UblkControl Open()
    {
        int fd = Native.Open(UblkAbi.ControlPath, Native.O_RDWR | Native.O_CLOEXEC);
        if (fd < 0)
        {
            int errno = Native.LastError;
            throw new UblkException(errno == Native.ENOENT || errno == Native.ENODEV
                ? $"{UblkAbi.ControlPath} does not exist: this kernel has no ublk (load the ublk_drv module: modprobe ublk_drv; Linux 6.0 or later)"
                : $"cannot open {UblkAbi.ControlPath}: {Native.Describe(errno)}");
        }
        try
        {
            return new UblkControl(fd, UringCmdRing.Create(4));
        }
        catch
        {
            Native.Close(fd);
            throw;
        }
    }

    /// <summary>Why ublk cannot be used here, or null when the control device is there.</summary>
    public static string? Unavailable() =>
        File.Exists(UblkAbi.ControlPath) ? null
            : $"{UblkAbi.ControlPath} does not exist: this kernel has no ublk (load the ublk_drv module: modprobe ublk_drv; Linux 6.0 or later)";

    /// <summary>ADD_DEV with a device number the kernel picks; returns the kernel's view of the new device.</summary>
    public UblkAbi.DevInfo AddDevice(ushort queues, ushort depth, uint maxIoBytes)
    {
        var info = new UblkAbi.DevInfo
        {
            NrHwQueues = queues,
            QueueDepth = depth,
            MaxIoBufBytes = maxIoBytes,
            DevId = AnyDevice,
            Flags = UblkAbi.FlagCmdIoctlEncode,
        };
        var cmd = new UblkAbi.CtrlCmd { DevId = AnyDevice, QueueId = NoQueue, Addr = (ulong)&info, Len = (ushort)sizeof(UblkAbi.DevInfo) };
        Run(UblkAbi.CmdAddDev, cmd, "ADD_DEV");
        return info;
    }

    public void SetParams(uint devId, in UblkAbi.Params parameters)
    {
        UblkAbi.Params p = parameters;
        p.Len = (uint)sizeof(UblkAbi.Params);
        var cmd = new UblkAbi.CtrlCmd { DevId = devId, QueueId = NoQueue, Addr = (ulong)&p, Len = (ushort)sizeof(UblkAbi.Params) };
        Run(UblkAbi.CmdSetParams, cmd, "SET_PARAMS");
    }

    /// <summary>START_DEV: this process serves the device. Blocks until every queue fetched and the disk was added.</summary>
    public void Start(uint devId) =>
        Run(UblkAbi.CmdStartDev, new UblkAbi.CtrlCmd { DevId = devId, QueueId = NoQueue, Data0 = (ulong)Environment.ProcessId }, "START_DEV");

    /// <summary>STOP_DEV: removes the disk; requests still queued are served first, then the fetch commands end with ABORT.</summary>
    public int Stop(uint devId) => TryRun(UblkAbi.CmdStopDev, new UblkAbi.CtrlCmd { DevId = devId, QueueId = NoQueue });

    /// <summary>DEL_DEV: frees the device number; waits until nothing holds /dev/ublkcN open.</summary>
    public int Delete(uint devId) => TryRun(UblkAbi.CmdDelDev, new UblkAbi.CtrlCmd { DevId = devId, QueueId = NoQueue });

    public UblkAbi.DevInfo GetInfo(uint devId)
    {
        UblkAbi.DevInfo info = default;
        var cmd = new UblkAbi.CtrlCmd { DevId = devId, QueueId = NoQueue, Addr = (ulong)&info, Len = (ushort)sizeof(UblkAbi.DevInfo) };
        Run(UblkAbi.CmdGetDevInfo, cmd, "GET_DEV_INFO");
        return info;
    }

    private void Run(uint op, in UblkAbi.CtrlCmd cmd, string name)
    {
        int result = TryRun(op, cmd);
        if (result < 0) throw new UblkException($"ublk {name} failed: {Native.Describe(-result)}");
    }

    /// <summary>Runs one command and returns its result (negative errno on failure).</summary>
    private int TryRun(uint op, in UblkAbi.CtrlCmd cmd)
    {
        lock (_gate)
        {
            byte* sqe = _ring.PrepareUringCmd(_fd, op, userData: op);
            if (sqe == null) return -Native.EAGAIN;
            *(UblkAbi.CtrlCmd*)(sqe + UringCmdRing.SqeCmdOffset) = cmd;
            while (true)
            {
                int errno = _ring.Enter(wait: true);
                if (errno == Native.EINTR) continue;
                if (errno != 0) return -errno;
                if (_ring.TryReap(out var cqe)) return cqe.Result;
            }
        }
    }

    public void Dispose()
    {
        _ring.Dispose();
        Native.Close(_fd);
    }
}
