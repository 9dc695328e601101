using System.Runtime.InteropServices;

namespace EdgeBlock.Interop;

/// <summary>
/// io_uring through the raw system calls (no liburing): the setup structures of linux/io_uring.h (the same on every
/// 64-bit architecture, as are the system call numbers 425-427), the CQE, and mapping a new ring's regions. The
/// rings themselves (Storage's <c>IoUring</c>, the ublk transport's <c>UringCmdRing</c>) differ in their SQEs.
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

    private const long IORING_OFF_SQ_RING = 0;
    private const long IORING_OFF_SQES = 0x10000000;

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

    /// <summary>
    /// Maps a new ring's regions (one mapping for both rings: the caller checked IORING_FEAT_SINGLE_MMAP) and its SQE
    /// array of <paramref name="sqeBytes"/>-byte entries. 0, or the errno with nothing mapped.
    /// </summary>
    public static int MapIoUring(int ringFd, in IoUringParams p, int sqeBytes, out nint ring, out nuint ringBytes, out nint sqes, out nuint sqeMapBytes)
    {
        nuint sqBytes = p.SqOff.Array + p.SqEntries * sizeof(uint);
        nuint cqBytes = p.CqOff.Cqes + p.CqEntries * (nuint)sizeof(IoUringCqe);
        ringBytes = Math.Max(sqBytes, cqBytes);
        sqeMapBytes = p.SqEntries * (nuint)sqeBytes;
        sqes = 0;
        ring = Mmap(0, ringBytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ringFd, IORING_OFF_SQ_RING);
        if (ring == MAP_FAILED) return LastError;
        sqes = Mmap(0, sqeMapBytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ringFd, IORING_OFF_SQES);
        if (sqes != MAP_FAILED) return 0;
        int errno = LastError;
        Munmap(ring, ringBytes);
        ring = 0;
        return errno;
    }
}
