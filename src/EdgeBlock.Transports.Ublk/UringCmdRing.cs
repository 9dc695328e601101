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

    private readonly int _fd;
    private readonly nint _ringMap;
    private readonly nuint _ringBytes;
    private readonly nint _sqeMap;
    private readonly nuint _sqeBytes;
    private readonly uint* _sqHead, _sqTail, _sqArray, _cqHead, _cqTail;
    private readonly uint _sqMask, _cqMask;
    private readonly Native.IoUringCqe* _cqes;
    private uint _unsubmitted;
    private int _disposed;

    private UringCmdRing(int fd, in Native.IoUringParams p, nint ringMap, nuint ringBytes, nint sqeMap, nuint sqeBytes)
    {
        _fd = fd;
        _ringMap = ringMap;
        _ringBytes = ringBytes;
        _sqeMap = sqeMap;
        _sqeBytes = sqeBytes;
        byte* ring = (byte*)ringMap;
        _sqHead = (uint*)(ring + p.SqOff.Head);
        _sqTail = (uint*)(ring + p.SqOff.Tail);
        _sqMask = *(uint*)(ring + p.SqOff.RingMask);
        _sqArray = (uint*)(ring + p.SqOff.Array);
        _cqHead = (uint*)(ring + p.CqOff.Head);
        _cqTail = (uint*)(ring + p.CqOff.Tail);
        _cqMask = *(uint*)(ring + p.CqOff.RingMask);
        _cqes = (Native.IoUringCqe*)(ring + p.CqOff.Cqes);
        SqEntries = p.SqEntries;
    }

    public uint SqEntries { get; }

    /// <summary>A ring of at least <paramref name="entries"/> SQEs and twice as many CQEs; throws <see cref="UblkException"/> naming the errno.</summary>
    public static UringCmdRing Create(uint entries)
    {
        Native.IoUringParams p = default;
        p.Flags = Native.IORING_SETUP_SQE128 | Native.IORING_SETUP_CQSIZE;
        p.CqEntries = entries * 2;
        long fd = Native.Syscall(Native.SysIoUringSetup, entries, (long)&p, 0, 0, 0, 0);
        if (fd < 0) throw new UblkException($"io_uring_setup with 128-byte SQEs failed: {Native.Describe(Native.LastError)} (io_uring disabled, or a kernel before 5.19)");
        int ringFd = (int)fd;
        const uint needed = Native.IORING_FEAT_SINGLE_MMAP | Native.IORING_FEAT_NODROP;
        if ((p.Features & needed) != needed)
        {
            Native.Close(ringFd);
            throw new UblkException("io_uring lacks single-mmap rings or no-drop completions (kernel before 5.5)");
        }
        int errno = Native.MapIoUring(ringFd, p, SqeBytes, out nint ring, out nuint ringBytes, out nint sqes, out nuint sqeBytes);
        if (errno != 0)
        {
            Native.Close(ringFd);
            throw new UblkException($"mmap of the io_uring regions failed: {Native.Describe(errno)}");
        }
        return new UringCmdRing(ringFd, p, ring, ringBytes, sqes, sqeBytes);
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
        byte* sqe = (byte*)_sqeMap + (nuint)index * SqeBytes;
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

    public bool TryReap(out Native.IoUringCqe cqe)
    {
        uint head = *_cqHead;
        if (head == Volatile.Read(ref *_cqTail))
        {
            cqe = default;
            return false;
        }
        cqe = _cqes[head & _cqMask];
        Volatile.Write(ref *_cqHead, head + 1);
        return true;
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        Native.Munmap(_sqeMap, _sqeBytes);
        Native.Munmap(_ringMap, _ringBytes);
        Native.Close(_fd);
    }
}
