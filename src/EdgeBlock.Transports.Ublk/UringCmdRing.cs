namespace EdgeBlock.Transports.Ublk;

/// <summary>
/// An io_uring with 128-byte SQEs (IORING_SETUP_SQE128), which URING_CMD needs to carry ublk's 32-byte
/// control command, through the raw system calls (no liburing). One thread drives a ring: the ublk driver
/// ties a queue to the task that fetched on it. Layouts are linux/io_uring.h's (the same on every 64-bit
/// architecture, as are the system call numbers 425 and 426).
/// </summary>
internal sealed unsafe class UringCmdRing : IDisposable
{
    public const byte OpRead = 22;
    public const byte OpUringCmd = 46;
    public const int SqeBytes = 128;
    /// <summary>Where an SQE128's command area starts (sqe->cmd).</summary>
    public const int SqeCmdOffset = 48;

    private readonly IoUringRegions _regions;
    private readonly int _fd;
    private readonly uint* _sqHead, _sqTail, _sqArray;
    private readonly uint _sqMask;
    private uint _unsubmitted;

    private UringCmdRing(IoUringRegions regions)
    {
        _regions = regions;
        _fd = regions.Fd;
        _sqHead = regions.SqHead;
        _sqTail = regions.SqTail;
        _sqMask = regions.SqMask;
        _sqArray = regions.SqArray;
    }

    /// <summary>A ring of at least <paramref name="entries"/> SQEs and twice as many CQEs; throws <see cref="UblkException"/> naming the errno.</summary>
    public static UringCmdRing Create(uint entries)
    {
        var regions = IoUringRegions.TryCreate(entries, entries * 2, Native.IORING_SETUP_SQE128, Native.IORING_FEAT_NODROP, SqeBytes, out int errno);
        return regions != null ? new UringCmdRing(regions)
            : throw new UblkException($"io_uring_setup with 128-byte SQEs failed: {Native.Describe(errno)} (io_uring disabled, or a kernel before 5.19)");
    }

    /// <summary>
    /// The next SQE, zeroed and already queued (submitted by the next <see cref="Enter"/>); null when the ring is full.
    /// The caller fills it before calling Enter.
    /// </summary>
    public byte* NextSqe()
    {
        uint tail = *_sqTail;
        if (tail - Volatile.Read(ref *_sqHead) > _sqMask) return null;
        uint index = tail & _sqMask;
        byte* sqe = _regions.Sqes + (nuint)index * SqeBytes;
        new Span<byte>(sqe, SqeBytes).Clear();
        _sqArray[index] = index;
        Volatile.Write(ref *_sqTail, tail + 1);
        _unsubmitted++;
        return sqe;
    }

    /// <summary>Prepares a URING_CMD: the caller writes its command into the returned SQE's command area (offset <see cref="SqeCmdOffset"/>).</summary>
    public byte* PrepareUringCmd(int fd, uint cmdOp, ulong userData)
    {
        byte* sqe = NextSqe();
        if (sqe == null) return null;
        var head = (Native.IoUringSqe*)sqe;
        head->Opcode = OpUringCmd;
        head->Fd = fd;
        head->Offset = cmdOp;
        head->UserData = userData;
        return sqe;
    }

    public bool PrepareRead(int fd, void* buffer, uint length, ulong userData)
    {
        byte* sqe = NextSqe();
        if (sqe == null) return false;
        var head = (Native.IoUringSqe*)sqe;
        head->Opcode = OpRead;
        head->Fd = fd;
        head->Offset = ulong.MaxValue; // the file's position: an eventfd has none
        head->Address = (ulong)buffer;
        head->Length = length;
        head->UserData = userData;
        return true;
    }

    /// <summary>Submits what <see cref="NextSqe"/> queued and, when <paramref name="wait"/>, blocks until a completion is there. 0 or the errno.</summary>
    public int Enter(bool wait)
    {
        uint toSubmit = _unsubmitted;
        long result = Native.Syscall(Native.SysIoUringEnter, _fd, toSubmit, wait ? 1 : 0, wait ? Native.IORING_ENTER_GETEVENTS : 0, 0, 0);
        if (result < 0) return Native.LastError;
        _unsubmitted -= (uint)Math.Min(result, toSubmit);
        return 0;
    }

    public bool TryReap(out Native.IoUringCqe cqe) => _regions.TryReap(out cqe);

    public void Dispose() => _regions.Dispose();
}
