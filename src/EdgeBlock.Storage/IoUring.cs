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
    private const long SysIoUringSetup = 425;
    private const long SysIoUringEnter = 426;
    private const long SysIoUringRegister = 427;

    public const byte OpNop = 0;
    public const byte OpRead = 22;
    public const byte OpWrite = 23;

    public const byte SqeFixedFile = 1 << 0;

    private const uint SetupCqSize = 1 << 3;
    private const uint FeatSingleMmap = 1 << 0;
    private const uint FeatNoDrop = 1 << 1;
    /// <summary>Added with 5.6, like IORING_OP_READ/WRITE: the feature bit tells us the opcodes exist.</summary>
    private const uint FeatRwCurPos = 1 << 3;

    private const uint EnterGetEvents = 1 << 0;
    private const uint RegisterFilesOp = 2;
    private const uint UnregisterFilesOp = 3;

    private const long OffSqRing = 0;
    private const long OffSqes = 0x10000000;

    [StructLayout(LayoutKind.Sequential)]
    private struct SqRingOffsets
    {
        public uint Head, Tail, RingMask, RingEntries, Flags, Dropped, Array, Resv1;
        public ulong UserAddr;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct CqRingOffsets
    {
        public uint Head, Tail, RingMask, RingEntries, Overflow, Cqes, Flags, Resv1;
        public ulong UserAddr;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Params
    {
        public uint SqEntries, CqEntries, Flags, SqThreadCpu, SqThreadIdle, Features, WqFd, Resv0, Resv1, Resv2;
        public SqRingOffsets SqOff;
        public CqRingOffsets CqOff;
    }

    /// <summary>struct io_uring_sqe (64 bytes).</summary>
    [StructLayout(LayoutKind.Explicit, Size = 64)]
    public struct Sqe
    {
        [FieldOffset(0)] public byte Opcode;
        [FieldOffset(1)] public byte Flags;
        [FieldOffset(2)] public ushort IoPrio;
        [FieldOffset(4)] public int Fd;
        [FieldOffset(8)] public ulong Offset;
        [FieldOffset(16)] public ulong Address;
        [FieldOffset(24)] public uint Length;
        [FieldOffset(28)] public uint RwFlags;
        [FieldOffset(32)] public ulong UserData;
    }

    /// <summary>struct io_uring_cqe (16 bytes, without CQE32).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct Cqe
    {
        public ulong UserData;
        public int Result;
        public uint Flags;
    }

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall(long number, long a1, long a2, long a3, long a4, long a5, long a6);

    private readonly int _ringFd;
    private readonly nint _ringMap;
    private readonly nuint _ringMapBytes;
    private readonly nint _sqeMap;
    private readonly nuint _sqeMapBytes;

    private readonly uint* _sqHead;
    private readonly uint* _sqTail;
    private readonly uint _sqMask;
    private readonly uint* _sqArray;
    private readonly Sqe* _sqes;
    private readonly uint* _cqHead;
    private readonly uint* _cqTail;
    private readonly uint _cqMask;
    private readonly Cqe* _cqes;
    private int _disposed;

    /// <summary>With IORING_FEAT_SINGLE_MMAP one mapping holds both rings.</summary>
    private IoUring(int ringFd, in Params p, nint ringMap, nuint ringMapBytes, nint sqeMap, nuint sqeMapBytes)
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
        _sqes = (Sqe*)sqeMap;
        _cqHead = (uint*)(cq + p.CqOff.Head);
        _cqTail = (uint*)(cq + p.CqOff.Tail);
        _cqMask = *(uint*)(cq + p.CqOff.RingMask);
        _cqes = (Cqe*)(cq + p.CqOff.Cqes);
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
        Params p = default;
        p.Flags = SetupCqSize;
        p.CqEntries = cqEntries;
        long fd = Syscall(SysIoUringSetup, sqEntries, (long)&p, 0, 0, 0, 0);
        if (fd < 0)
        {
            errno = Marshal.GetLastPInvokeError();
            return null;
        }
        int ringFd = (int)fd;
        const uint needed = FeatSingleMmap | FeatNoDrop | FeatRwCurPos;
        if ((p.Features & needed) != needed)
        {
            Native.Close(ringFd);
            errno = Native.EINVAL;
            return null;
        }

        nuint sqBytes = p.SqOff.Array + p.SqEntries * sizeof(uint);
        nuint cqBytes = p.CqOff.Cqes + p.CqEntries * (nuint)sizeof(Cqe);
        nuint ringBytes = Math.Max(sqBytes, cqBytes);
        nuint sqeBytes = p.SqEntries * (nuint)sizeof(Sqe);
        nint ring = Native.Mmap(0, ringBytes, Native.PROT_READ | Native.PROT_WRITE, Native.MAP_SHARED | Native.MAP_POPULATE, ringFd, OffSqRing);
        if (ring == -1)
        {
            errno = Marshal.GetLastPInvokeError();
            Native.Close(ringFd);
            return null;
        }
        nint sqes = Native.Mmap(0, sqeBytes, Native.PROT_READ | Native.PROT_WRITE, Native.MAP_SHARED | Native.MAP_POPULATE, ringFd, OffSqes);
        if (sqes == -1)
        {
            errno = Marshal.GetLastPInvokeError();
            Native.Munmap(ring, ringBytes);
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
            return Syscall(SysIoUringRegister, _ringFd, RegisterFilesOp, (long)p, fds.Length, 0, 0) < 0 ? Marshal.GetLastPInvokeError() : 0;
        }
    }

    /// <summary>
    /// Drops the fixed files. Closing the ring alone releases them only when the kernel's asynchronous
    /// teardown gets to it; this releases them before the call returns (nothing may be in flight).
    /// </summary>
    public int UnregisterFiles() =>
        Syscall(SysIoUringRegister, _ringFd, UnregisterFilesOp, 0, 0, 0, 0) < 0 ? Marshal.GetLastPInvokeError() : 0;

    /// <summary>The next free SQE, zeroed; null when the submission ring is full. Publish it with <see cref="Submit"/>.</summary>
    public Sqe* GetSqe()
    {
        uint tail = *_sqTail;
        if (tail - Volatile.Read(ref *_sqHead) > _sqMask) return null;
        Sqe* sqe = &_sqes[tail & _sqMask];
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
            long submitted = Syscall(SysIoUringEnter, _ringFd, 1, 0, 0, 0, 0);
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
        long result = Syscall(SysIoUringEnter, _ringFd, toSubmit, wait ? 1 : 0, wait ? EnterGetEvents : 0, 0, 0);
        return result < 0 ? Marshal.GetLastPInvokeError() : 0;
    }

    /// <summary>Waits until at least one completion is there (returns at once when one is). Returns 0 or the errno.</summary>
    public int WaitForCompletion()
    {
        long result = Syscall(SysIoUringEnter, _ringFd, 0, 1, EnterGetEvents, 0, 0);
        return result < 0 ? Marshal.GetLastPInvokeError() : 0;
    }

    /// <summary>Takes the next completion, if any; the slot is released at once (the value is copied).</summary>
    public bool TryReap(out Cqe cqe)
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
