using System.Runtime.InteropServices;

namespace EdgeBlock.Storage;

/// <summary>
/// A bare io_uring instance through the raw system calls (no liburing): setup, the three mmapped
/// regions, SQE preparation and io_uring_enter. Not thread safe: <see cref="UringFileIo"/> serializes
/// submissions and reaps completions on one thread. Layouts are those of linux/io_uring.h, which are
/// the same on every 64-bit architecture, as are the system call numbers (425-427).
/// </summary>
internal sealed unsafe partial class IoUring : IDisposable
{
    public const byte OpNop = 0;
    public const byte OpRead = 22;
    public const byte OpWrite = 23;

    public const byte SqeFixedFile = 1 << 0;

    private const uint RegisterFilesOp = 2;
    private const uint UnregisterFilesOp = 3;

    private readonly int _ringFd;
    private readonly nint _ringMap;
    private readonly nuint _ringMapBytes;
    private readonly nint _sqeMap;
    private readonly nuint _sqeMapBytes;

    private readonly uint* _sqHead;
    private readonly uint* _sqTail;
    private readonly uint _sqMask;
    private readonly uint* _sqArray;
    private readonly Native.IoUringSqe* _sqes;
    private readonly uint* _cqHead;
    private readonly uint* _cqTail;
    private readonly uint _cqMask;
    private readonly Native.IoUringCqe* _cqes;
    private int _disposed;

    /// <summary>With IORING_FEAT_SINGLE_MMAP one mapping holds both rings.</summary>
    private IoUring(int ringFd, in Native.IoUringParams p, nint ringMap, nuint ringMapBytes, nint sqeMap, nuint sqeMapBytes)
    {
        _ringFd = ringFd;
        _ringMap = ringMap;
        _ringMapBytes = ringMapBytes;
        _sqeMap = sqeMap;
        _sqeMapBytes = sqeMapBytes;
        byte* sq = (byte*)ringMap;
        byte* cq = (byte*)ringMap;
        _sqHead = (uint*)(sq + p.SqOff.Head);
        _sqTail = (uint*)(sq + p.SqOff.Tail);
        _sqMask = *(uint*)(sq + p.SqOff.RingMask);
        _sqArray = (uint*)(sq + p.SqOff.Array);
        _sqes = (Native.IoUringSqe*)sqeMap;
        _cqHead = (uint*)(cq + p.CqOff.Head);
        _cqTail = (uint*)(cq + p.CqOff.Tail);
        _cqMask = *(uint*)(cq + p.CqOff.RingMask);
        _cqes = (Native.IoUringCqe*)(cq + p.CqOff.Cqes);
        SqEntries = p.SqEntries;
        CqEntries = p.CqEntries;
    }

    public uint SqEntries { get; }

    /// <summary>Completions the ring holds; the owner keeps at most this many requests in flight.</summary>
    public uint CqEntries { get; }

    /// <summary>
    /// Creates a ring, or returns null with the errno when this kernel or its sandbox does not allow
    /// io_uring (ENOSYS before 5.1 or under seccomp, EPERM with kernel.io_uring_disabled), or lacks
    /// what we rely on (IORING_OP_READ/WRITE and NODROP: 5.6).
    /// </summary>
    public static IoUring? TryCreate(uint sqEntries, uint cqEntries, out int errno)
    {
        errno = 0;
        if (!OperatingSystem.IsLinux() || IntPtr.Size != 8)
        {
            errno = Native.ENOSYS;
            return null;
        }
        Native.IoUringParams p = default;
        p.Flags = Native.IORING_SETUP_CQSIZE;
        p.CqEntries = cqEntries;
        long fd = Native.Syscall(Native.SysIoUringSetup, sqEntries, (long)&p, 0, 0, 0, 0);
        if (fd < 0)
        {
            errno = Marshal.GetLastPInvokeError();
            return null;
        }
        int ringFd = (int)fd;
        const uint needed = Native.IORING_FEAT_SINGLE_MMAP | Native.IORING_FEAT_NODROP | Native.IORING_FEAT_RW_CUR_POS;
        if ((p.Features & needed) != needed)
        {
            Native.Close(ringFd);
            errno = Native.EINVAL;
            return null;
        }

        errno = Native.MapIoUring(ringFd, p, sizeof(Native.IoUringSqe), out nint ring, out nuint ringBytes, out nint sqes, out nuint sqeBytes);
        if (errno != 0)
        {
            Native.Close(ringFd);
            return null;
        }
        return new IoUring(ringFd, p, ring, ringBytes, sqes, sqeBytes);
    }

    /// <summary>Registers descriptors as fixed files 0..n-1: the ring holds its own references to them.</summary>
    public int RegisterFiles(ReadOnlySpan<int> fds)
    {
        fixed (int* p = fds)
        {
            return Native.Syscall(Native.SysIoUringRegister, _ringFd, RegisterFilesOp, (long)p, fds.Length, 0, 0) < 0 ? Marshal.GetLastPInvokeError() : 0;
        }
    }

    /// <summary>
    /// Drops the fixed files. Closing the ring alone releases them only when the kernel's asynchronous
    /// teardown gets to it; this releases them before the call returns (nothing may be in flight).
    /// </summary>
    public int UnregisterFiles() =>
        Native.Syscall(Native.SysIoUringRegister, _ringFd, UnregisterFilesOp, 0, 0, 0, 0) < 0 ? Marshal.GetLastPInvokeError() : 0;

    /// <summary>The next free SQE, zeroed; null when the submission ring is full. Publish it with <see cref="Submit"/>.</summary>
    public Native.IoUringSqe* GetSqe()
    {
        uint tail = *_sqTail;
        if (tail - Volatile.Read(ref *_sqHead) > _sqMask) return null;
        Native.IoUringSqe* sqe = &_sqes[tail & _sqMask];
        *sqe = default;
        _sqArray[tail & _sqMask] = tail & _sqMask;
        return sqe;
    }

    /// <summary>
    /// Publishes the SQE from <see cref="GetSqe"/> and tells the kernel. Returns 0 when the kernel took it,
    /// else the errno; then the SQE has been withdrawn again and will never run.
    /// </summary>
    public int Submit()
    {
        uint tail = *_sqTail;
        Volatile.Write(ref *_sqTail, tail + 1);
        while (true)
        {
            long submitted = Native.Syscall(Native.SysIoUringEnter, _ringFd, 1, 0, 0, 0, 0);
            if (submitted == 1) return 0;
            int errno = submitted < 0 ? Marshal.GetLastPInvokeError() : Native.EAGAIN; // 0 submitted
            if (errno == Native.EINTR) continue;
            // Nothing consumed it (only Submit passes to_submit > 0, and the caller serializes Submit): withdraw it.
            if (Volatile.Read(ref *_sqHead) == tail) Volatile.Write(ref *_sqTail, tail);
            return errno;
        }
    }

    /// <summary>SQEs prepared with <see cref="GetSqe"/> and published, that the kernel has not consumed yet.</summary>
    public uint Unsubmitted => *_sqTail - Volatile.Read(ref *_sqHead);

    /// <summary>Free SQEs.</summary>
    public uint SqSpace => SqEntries - (*_sqTail - Volatile.Read(ref *_sqHead));

    /// <summary>Publishes an SQE from <see cref="GetSqe"/> without telling the kernel; <see cref="Enter"/> submits it.</summary>
    public void Publish() => Volatile.Write(ref *_sqTail, *_sqTail + 1);

    public bool HasCompletions => *_cqHead != Volatile.Read(ref *_cqTail);

    /// <summary>io_uring_enter: submits what is published, and with wait blocks until a completion is there. 0 or the errno.</summary>
    public int Enter(uint toSubmit, bool wait)
    {
        long result = Native.Syscall(Native.SysIoUringEnter, _ringFd, toSubmit, wait ? 1 : 0, wait ? Native.IORING_ENTER_GETEVENTS : 0, 0, 0);
        return result < 0 ? Marshal.GetLastPInvokeError() : 0;
    }

    /// <summary>Waits until at least one completion is there (returns at once when one is). Returns 0 or the errno.</summary>
    public int WaitForCompletion()
    {
        long result = Native.Syscall(Native.SysIoUringEnter, _ringFd, 0, 1, Native.IORING_ENTER_GETEVENTS, 0, 0);
        return result < 0 ? Marshal.GetLastPInvokeError() : 0;
    }

    /// <summary>Takes the next completion, if any; the slot is released at once (the value is copied).</summary>
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
        Native.Munmap(_sqeMap, _sqeMapBytes);
        Native.Munmap(_ringMap, _ringMapBytes);
        Native.Close(_ringFd);
    }
}
