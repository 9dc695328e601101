using System.Runtime.InteropServices;

namespace EdgeBlock.Transports.Ublk;

/// <summary>
/// The ublk driver's user ABI (linux/ublk_cmd.h): command codes, flags and the structures shared with the
/// kernel, with the layouts of the uapi header (pinned by UblkAbiTests). Commands use the ioctl encoding
/// (UBLK_U_*): the legacy bare numbers are refused by kernels built without CONFIG_BLKDEV_UBLK_LEGACY_OPCODES.
/// </summary>
internal static class UblkAbi
{
    public const string ControlPath = "/dev/ublk-control";
    public const string CharDevicePrefix = "/dev/ublkc";
    public const string BlockDevicePrefix = "/dev/ublkb";

    private const uint IocWrite = 1, IocRead = 2;
    private const uint IocType = 'u';

    /// <summary>_IOC(dir, 'u', nr, size) as asm-generic/ioctl.h builds it.</summary>
    public static uint Ioc(uint direction, uint number, int size) => direction << 30 | (uint)size << 16 | IocType << 8 | number;

    private static readonly int CtrlCmdSize = Marshal.SizeOf<CtrlCmd>();
    private static readonly int IoCmdSize = Marshal.SizeOf<IoCmd>();

    public static readonly uint CmdGetDevInfo = Ioc(IocRead, 0x02, CtrlCmdSize);
    public static readonly uint CmdAddDev = Ioc(IocRead | IocWrite, 0x04, CtrlCmdSize);
    public static readonly uint CmdDelDev = Ioc(IocRead | IocWrite, 0x05, CtrlCmdSize);
    public static readonly uint CmdStartDev = Ioc(IocRead | IocWrite, 0x06, CtrlCmdSize);
    public static readonly uint CmdStopDev = Ioc(IocRead | IocWrite, 0x07, CtrlCmdSize);
    public static readonly uint CmdSetParams = Ioc(IocRead | IocWrite, 0x08, CtrlCmdSize);
    public static readonly uint IoFetchReq = Ioc(IocRead | IocWrite, 0x20, IoCmdSize);
    public static readonly uint IoCommitAndFetchReq = Ioc(IocRead | IocWrite, 0x21, IoCmdSize);

    /// <summary>A fetch command's completion: the driver is stopping the queue, fetch no more (-ENODEV).</summary>
    public const int IoResAbort = -19;

    /// <summary>The tag is 16 bits in newer kernels, but at most this many requests per queue.</summary>
    public const int MaxQueueDepth = 4096;
    public const int SectorShift = 9;

    /// <summary>Where queue q's descriptor array is mapped from /dev/ublkcN: q × this (the room of the deepest queue, rounded to pages).</summary>
    public static long DescriptorArrayOffset(int queueId, int pageSize) =>
        queueId * RoundUp((long)MaxQueueDepth * Marshal.SizeOf<IoDesc>(), pageSize);

    public static long DescriptorArrayBytes(int depth, int pageSize) => RoundUp((long)depth * Marshal.SizeOf<IoDesc>(), pageSize);

    private static long RoundUp(long value, int to) => (value + to - 1) / to * to;

    // Device flags (ublksrv_ctrl_dev_info.flags).
    public const ulong FlagCmdIoctlEncode = 1UL << 6;

    // Request operations (low 8 bits of op_flags) and flags (bits of op_flags as they are).
    public const byte OpRead = 0;
    public const byte OpWrite = 1;
    public const byte OpFlush = 2;
    public const byte OpDiscard = 3;
    public const byte OpWriteSame = 4;
    public const byte OpWriteZeroes = 5;
    public const uint IoFlagFua = 1U << 13;
    public const uint IoFlagNoUnmap = 1U << 15;

    // ublk_param_basic.attrs and ublk_params.types.
    public const uint AttrReadOnly = 1 << 0;
    public const uint AttrVolatileCache = 1 << 2;
    public const uint AttrFua = 1 << 3;
    public const uint ParamTypeBasic = 1 << 0;
    public const uint ParamTypeDiscard = 1 << 1;

    // Device states (ublksrv_ctrl_dev_info.state).
    public const ushort StateDead = 0;
    public const ushort StateLive = 1;
    public const ushort StateQuiesced = 2;

    /// <summary>struct ublksrv_ctrl_cmd: in the SQE's command area of a control command.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct CtrlCmd
    {
        public uint DevId;
        public ushort QueueId;
        public ushort Len;
        public ulong Addr;
        public ulong Data0;
        public ulong Data1;
    }

    /// <summary>struct ublksrv_ctrl_dev_info: ADD_DEV's request and answer, GET_DEV_INFO's answer.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct DevInfo
    {
        public ushort NrHwQueues;
        public ushort QueueDepth;
        public ushort State;
        public ushort Pad0;
        public uint MaxIoBufBytes;
        public uint DevId;
        public int UblksrvPid;
        public uint Pad1;
        public ulong Flags;
        public ulong UblksrvFlags;
        public uint OwnerUid;
        public uint OwnerGid;
        public ulong Reserved1;
        public ulong Reserved2;
    }

    /// <summary>struct ublksrv_io_desc: the request behind a tag, in the read-only array mapped from /dev/ublkcN.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct IoDesc
    {
        public uint OpFlags;
        public uint NrSectors;
        public ulong StartSector;
        public ulong Addr;

        /// <summary>UBLK_IO_OP_*; the flags (UBLK_IO_F_*) are the other bits of <see cref="OpFlags"/>, at their own positions.</summary>
        public readonly byte Op => (byte)OpFlags;
    }

    /// <summary>struct ublksrv_io_cmd: in the SQE's command area of FETCH_REQ / COMMIT_AND_FETCH_REQ.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct IoCmd
    {
        public ushort QueueId;
        public ushort Tag;
        public int Result;
        public ulong Addr;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct ParamBasic
    {
        public uint Attrs;
        public byte LogicalBsShift;
        public byte PhysicalBsShift;
        public byte IoOptShift;
        public byte IoMinShift;
        public uint MaxSectors;
        public uint ChunkSectors;
        public ulong DevSectors;
        public ulong VirtBoundaryMask;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct ParamDiscard
    {
        public uint DiscardAlignment;
        public uint DiscardGranularity;
        public uint MaxDiscardSectors;
        public uint MaxWriteZeroesSectors;
        public ushort MaxDiscardSegments;
        public ushort Reserved0;
    }

    /// <summary>struct ublk_params up to the discard part; Len tells the kernel how much of its (longer) struct we send.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct Params
    {
        public uint Len;
        public uint Types;
        public ParamBasic Basic;
        public ParamDiscard Discard;
    }
}
