using System.Runtime.InteropServices;

namespace EdgeBlock.Transports.Ublk.Tests;

/// <summary>The structures and command codes shared with the kernel, pinned to linux/ublk_cmd.h and linux/io_uring.h.</summary>
public class UblkAbiTests
{
    [Fact]
    public void Structures_HaveTheUapiSizes()
    {
        Assert.Equal(32, Marshal.SizeOf<UblkAbi.CtrlCmd>());
        Assert.Equal(64, Marshal.SizeOf<UblkAbi.DevInfo>());
        Assert.Equal(24, Marshal.SizeOf<UblkAbi.IoDesc>());
        Assert.Equal(16, Marshal.SizeOf<UblkAbi.IoCmd>());
        Assert.Equal(32, Marshal.SizeOf<UblkAbi.ParamBasic>());
        Assert.Equal(20, Marshal.SizeOf<UblkAbi.ParamDiscard>());
        Assert.Equal(64, Marshal.SizeOf<UblkAbi.Params>());
    }

    [Fact]
    public void Structures_FieldsAtTheUapiOffsets()
    {
        Assert.Equal(8, (int)Marshal.OffsetOf<UblkAbi.CtrlCmd>(nameof(UblkAbi.CtrlCmd.Addr)));
        Assert.Equal(16, (int)Marshal.OffsetOf<UblkAbi.CtrlCmd>(nameof(UblkAbi.CtrlCmd.Data0)));
        Assert.Equal(8, (int)Marshal.OffsetOf<UblkAbi.DevInfo>(nameof(UblkAbi.DevInfo.MaxIoBufBytes)));
        Assert.Equal(12, (int)Marshal.OffsetOf<UblkAbi.DevInfo>(nameof(UblkAbi.DevInfo.DevId)));
        Assert.Equal(16, (int)Marshal.OffsetOf<UblkAbi.DevInfo>(nameof(UblkAbi.DevInfo.UblksrvPid)));
        Assert.Equal(24, (int)Marshal.OffsetOf<UblkAbi.DevInfo>(nameof(UblkAbi.DevInfo.Flags)));
        Assert.Equal(8, (int)Marshal.OffsetOf<UblkAbi.IoDesc>(nameof(UblkAbi.IoDesc.StartSector)));
        Assert.Equal(16, (int)Marshal.OffsetOf<UblkAbi.IoDesc>(nameof(UblkAbi.IoDesc.Addr)));
        Assert.Equal(4, (int)Marshal.OffsetOf<UblkAbi.IoCmd>(nameof(UblkAbi.IoCmd.Result)));
        Assert.Equal(8, (int)Marshal.OffsetOf<UblkAbi.IoCmd>(nameof(UblkAbi.IoCmd.Addr)));
        Assert.Equal(8, (int)Marshal.OffsetOf<UblkAbi.ParamBasic>(nameof(UblkAbi.ParamBasic.MaxSectors)));
        Assert.Equal(16, (int)Marshal.OffsetOf<UblkAbi.ParamBasic>(nameof(UblkAbi.ParamBasic.DevSectors)));
        Assert.Equal(16, (int)Marshal.OffsetOf<UblkAbi.ParamDiscard>(nameof(UblkAbi.ParamDiscard.MaxDiscardSegments)));
        Assert.Equal(8, (int)Marshal.OffsetOf<UblkAbi.Params>(nameof(UblkAbi.Params.Basic)));
        Assert.Equal(40, (int)Marshal.OffsetOf<UblkAbi.Params>(nameof(UblkAbi.Params.Discard)));
    }

    [Fact]
    public void CommandCodes_AreTheIoctlEncodedUapiValues()
    {
        // _IOR/_IOWR('u', nr, struct ublksrv_ctrl_cmd / struct ublksrv_io_cmd) as ublk_cmd.h defines UBLK_U_*.
        Assert.Equal(0x80207502u, UblkAbi.CmdGetDevInfo);
        Assert.Equal(0xC0207504u, UblkAbi.CmdAddDev);
        Assert.Equal(0xC0207505u, UblkAbi.CmdDelDev);
        Assert.Equal(0xC0207506u, UblkAbi.CmdStartDev);
        Assert.Equal(0xC0207507u, UblkAbi.CmdStopDev);
        Assert.Equal(0xC0207508u, UblkAbi.CmdSetParams);
        Assert.Equal(0xC0107520u, UblkAbi.IoFetchReq);
        Assert.Equal(0xC0107521u, UblkAbi.IoCommitAndFetchReq);
    }

    [Fact]
    public void DescriptorArray_QueueOffsetsLeaveRoomForTheDeepestQueue()
    {
        // Each queue's array starts at qid × round_up(4096 × 24, page), whatever this device's depth.
        Assert.Equal(0, UblkAbi.DescriptorArrayOffset(0, 4096));
        Assert.Equal(98304, UblkAbi.DescriptorArrayOffset(1, 4096));
        Assert.Equal(4096, UblkAbi.DescriptorArrayBytes(64, 4096));
        Assert.Equal(8192, UblkAbi.DescriptorArrayBytes(200, 4096));
    }

    [Fact]
    public void Sqe_CommandAreaFollowsUserData()
    {
        Assert.Equal(64, Marshal.SizeOf<EdgeBlock.Interop.Native.IoUringSqe>());
        Assert.Equal(8, (int)Marshal.OffsetOf<EdgeBlock.Interop.Native.IoUringSqe>("Offset"));
        Assert.Equal(32, (int)Marshal.OffsetOf<EdgeBlock.Interop.Native.IoUringSqe>("UserData"));
        Assert.True(UringCmdRing.SqeCmdOffset >= 32 + sizeof(ulong), "the command area starts after user_data");
        Assert.Equal(16, Marshal.SizeOf<EdgeBlock.Interop.Native.IoUringCqe>());
    }
}
