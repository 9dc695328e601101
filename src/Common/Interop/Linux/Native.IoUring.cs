using System.Runtime.InteropServices;

namespace EdgeBlock.Interop;

/// <summary>
/// io_uring through the raw system calls (no liburing): the structures of linux/io_uring.h (the same on every 64-bit
/// architecture, as are the system call numbers 425-427). <see cref="IoUringRegions"/> sets a ring up; the rings
/// themselves (Storage's <c>IoUring</c>, the ublk transport's <c>UringCmdRing</c>) differ in their SQEs.
/// </summary>
internal static unsafe partial class Native
{
    public const long SysIoUringSetup = 425;
    public const long SysIoUringEnter = 426;
    public const long SysIoUringRegister = 427;

    public const uint IORING_SETUP_CQSIZE = 1 << 3;
    public const uint IORING_SETUP_SQE128 = 1 << 10;
    public const uint IORING_FEAT_SINGLE_MMAP = 1 << 0;
    public const uint IORING_FEAT_NODROP = 1 << 1;
    /// <summary>Added with 5.6, like IORING_OP_READ/WRITE: the feature bit tells us the opcodes exist.</summary>
    public const uint IORING_FEAT_RW_CUR_POS = 1 << 3;
    public const uint IORING_ENTER_GETEVENTS = 1 << 0;

    [StructLayout(LayoutKind.Sequential)]
    public struct IoSqRingOffsets
    {
        public uint Head, Tail, RingMask, RingEntries, Flags, Dropped, Array, Resv1;
        public ulong UserAddr;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct IoCqRingOffsets
    {
        public uint Head, Tail, RingMask, RingEntries, Overflow, Cqes, Flags, Resv1;
        public ulong UserAddr;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct IoUringParams
    {
        public uint SqEntries, CqEntries, Flags, SqThreadCpu, SqThreadIdle, Features, WqFd, Resv0, Resv1, Resv2;
        public IoSqRingOffsets SqOff;
        public IoCqRingOffsets CqOff;
    }

    /// <summary>
    /// struct io_uring_sqe up to user_data (64 bytes). With IORING_SETUP_SQE128 each entry is 128 bytes and a
    /// URING_CMD's command starts at byte 48 (sqe->cmd); <see cref="Offset"/> then holds cmd_op.
    /// </summary>
    [StructLayout(LayoutKind.Explicit, Size = 64)]
    public struct IoUringSqe
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
    public struct IoUringCqe
    {
        public ulong UserData;
        public int Result;
        public uint Flags;
    }

    [LibraryImport(Libc, EntryPoint = "syscall", SetLastError = true)]
    public static partial long Syscall(long number, long a1, long a2, long a3, long a4, long a5, long a6);
}

/// <summary>
/// A new io_uring and its mapped regions: the submission ring's pointers for the owner's own SQE handling, the
/// completion ring read here. One mapping holds both rings (IORING_FEAT_SINGLE_MMAP, required). Not thread safe.
/// </summary>
internal sealed unsafe class IoUringRegions : IDisposable
{
    private const long IORING_OFF_SQ_RING = 0;
    private const long IORING_OFF_SQES = 0x10000000;

    private readonly nint _ringMap;
    private readonly nuint _ringBytes;
    private readonly nint _sqeMap;
    private readonly nuint _sqeBytes;
    private readonly uint* _cqHead, _cqTail;
    private readonly uint _cqMask;
    private readonly Native.IoUringCqe* _cqes;
    private int _disposed;

    private IoUringRegions(int fd, in Native.IoUringParams p, nint ringMap, nuint ringBytes, nint sqeMap, nuint sqeBytes)
    {
        Fd = fd;
        _ringMap = ringMap;
        _ringBytes = ringBytes;
        _sqeMap = sqeMap;
        _sqeBytes = sqeBytes;
        byte* ring = (byte*)ringMap;
        SqHead = (uint*)(ring + p.SqOff.Head);
        SqTail = (uint*)(ring + p.SqOff.Tail);
        SqMask = *(uint*)(ring + p.SqOff.RingMask);
        SqArray = (uint*)(ring + p.SqOff.Array);
        Sqes = (byte*)sqeMap;
        _cqHead = (uint*)(ring + p.CqOff.Head);
        _cqTail = (uint*)(ring + p.CqOff.Tail);
        _cqMask = *(uint*)(ring + p.CqOff.RingMask);
        _cqes = (Native.IoUringCqe*)(ring + p.CqOff.Cqes);
        SqEntries = p.SqEntries;
        CqEntries = p.CqEntries;
    }

    public int Fd { get; }
    public uint SqEntries { get; }
    public uint CqEntries { get; }
    public uint* SqHead { get; }
    public uint* SqTail { get; }
    public uint SqMask { get; }
    public uint* SqArray { get; }
    /// <summary>The SQE array (entries of the size given at setup).</summary>
    public byte* Sqes { get; }

    /// <summary>
    /// io_uring_setup with these flags (a CQ of <paramref name="cqEntries"/>), checked for <paramref name="requiredFeatures"/>
    /// (else EINVAL), and mapped; null with the errno when any step fails (nothing is left open).
    /// </summary>
    public static IoUringRegions? TryCreate(uint sqEntries, uint cqEntries, uint setupFlags, uint requiredFeatures, int sqeBytes, out int errno)
    {
        Native.IoUringParams p = default;
        p.Flags = setupFlags | Native.IORING_SETUP_CQSIZE;
        p.CqEntries = cqEntries;
        long result = Native.Syscall(Native.SysIoUringSetup, sqEntries, (long)&p, 0, 0, 0, 0);
        if (result < 0)
        {
            errno = Native.LastError;
            return null;
        }
        int fd = (int)result;
        requiredFeatures |= Native.IORING_FEAT_SINGLE_MMAP;
        if ((p.Features & requiredFeatures) != requiredFeatures)
        {
            Native.Close(fd);
            errno = Native.EINVAL;
            return null;
        }
        nuint sqBytes = p.SqOff.Array + p.SqEntries * sizeof(uint);
        nuint cqBytes = p.CqOff.Cqes + p.CqEntries * (nuint)sizeof(Native.IoUringCqe);
        nuint ringBytes = Math.Max(sqBytes, cqBytes);
        nuint sqeMapBytes = p.SqEntries * (nuint)sqeBytes;
        const int prot = Native.PROT_READ | Native.PROT_WRITE, flags = Native.MAP_SHARED | Native.MAP_POPULATE;
        nint ring = Native.Mmap(0, ringBytes, prot, flags, fd, IORING_OFF_SQ_RING);
        nint sqes = ring == Native.MAP_FAILED ? Native.MAP_FAILED : Native.Mmap(0, sqeMapBytes, prot, flags, fd, IORING_OFF_SQES);
        if (sqes == Native.MAP_FAILED)
        {
            errno = Native.LastError;
            if (ring != Native.MAP_FAILED) Native.Munmap(ring, ringBytes);
            Native.Close(fd);
            return null;
        }
        errno = 0;
        return new IoUringRegions(fd, p, ring, ringBytes, sqes, sqeMapBytes);
    }

    public bool HasCompletions => *_cqHead != Volatile.Read(ref *_cqTail);

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
        Native.Munmap(_sqeMap, _sqeBytes);
        Native.Munmap(_ringMap, _ringBytes);
        Native.Close(Fd);
    }
}
