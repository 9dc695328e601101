using System.Runtime.InteropServices;

namespace EdgeBlock.Storage;

/// <summary>
/// A bare io_uring instance through the raw system calls (no liburing): SQE preparation and io_uring_enter
/// over the regions <see cref="IoUringRegions"/> set up and maps (it also reads the completions). Not thread safe: <see cref="UringFileIo"/> serializes
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

    private readonly IoUringRegions _regions;
    private readonly int _ringFd;
    private readonly uint* _sqHead;
    private readonly uint* _sqTail;
    private readonly uint _sqMask;
    private readonly uint* _sqArray;
    private readonly Native.IoUringSqe* _sqes;

    private IoUring(IoUringRegions regions)
    {
        _regions = regions;
        _ringFd = regions.Fd;
        _sqHead = regions.SqHead;
        _sqTail = regions.SqTail;
        _sqMask = regions.SqMask;
        _sqArray = regions.SqArray;
        _sqes = (Native.IoUringSqe*)regions.Sqes;
    }

    public uint SqEntries => _regions.SqEntries;

    /// <summary>Completions the ring holds; the owner keeps at most this many requests in flight.</summary>
    public uint CqEntries => _regions.CqEntries;

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
        var regions = IoUringRegions.TryCreate(sqEntries, cqEntries, 0, Native.IORING_FEAT_NODROP | Native.IORING_FEAT_RW_CUR_POS,
            sizeof(Native.IoUringSqe), out errno);
        return regions == null ? null : new IoUring(regions);
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

    public bool HasCompletions => _regions.HasCompletions;

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
    public bool TryReap(out Native.IoUringCqe cqe) => _regions.TryReap(out cqe);

    public void Dispose() => _regions.Dispose();
}
