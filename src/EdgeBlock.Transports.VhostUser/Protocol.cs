namespace EdgeBlock.Transports.VhostUser;

/// <summary>Front-end request types of the vhost-user protocol (QEMU docs/interop/vhost-user.rst).</summary>
public enum VhostUserRequest : uint
{
    None = 0,
    GetFeatures = 1,
    SetFeatures = 2,
    SetOwner = 3,
    ResetOwner = 4,
    SetMemTable = 5,
    SetLogBase = 6,
    SetLogFd = 7,
    SetVringNum = 8,
    SetVringAddr = 9,
    SetVringBase = 10,
    GetVringBase = 11,
    SetVringKick = 12,
    SetVringCall = 13,
    SetVringErr = 14,
    GetProtocolFeatures = 15,
    SetProtocolFeatures = 16,
    GetQueueNum = 17,
    SetVringEnable = 18,
    SendRarp = 19,
    NetSetMtu = 20,
    SetSlaveReqFd = 21,
    IotlbMsg = 22,
    SetVringEndian = 23,
    GetConfig = 24,
    SetConfig = 25,
    GetInflightFd = 31,
    SetInflightFd = 32,
    ResetDevice = 34,
    VringKick = 35,
    GetMaxMemSlots = 36,
    AddMemReg = 37,
    RemMemReg = 38,
    SetStatus = 39,
    GetStatus = 40,
}

/// <summary>Constants of the vhost-user wire format.</summary>
public static class VhostUser
{
    public const int HeaderSize = 12;
    public const uint Version = 0x1;
    public const uint VersionMask = 0x3;
    public const uint ReplyFlag = 0x4;
    public const uint NeedReplyFlag = 0x8;

    /// <summary>Largest payload we accept: the memory table (8 + 8 × 32) and a config space are far below.</summary>
    public const int MaxPayload = 4096;
    public const int MaxMemoryRegions = 8;
    public const int MaxFds = 8;

    /// <summary>Bits 0-7 of SET_VRING_KICK/CALL/ERR's u64: the ring; bit 8: no fd passed (polling).</summary>
    public const ulong VringIndexMask = 0xff;
    public const ulong VringNoFdFlag = 0x100;

    // Protocol feature bits.
    public const int ProtocolFMq = 0;
    public const int ProtocolFReplyAck = 3;
    public const int ProtocolFConfig = 9;
    public const int ProtocolFInflightShmfd = 12;
    public const int ProtocolFResetDevice = 13;

    /// <summary>Feature bit 30: the back-end speaks GET/SET_PROTOCOL_FEATURES; negotiated, rings start disabled.</summary>
    public const int FProtocolFeatures = 30;
}

/// <summary>virtio and virtio-blk constants (virtio 1.1 spec, 2.6 split virtqueues and 5.2 block device).</summary>
public static class Virtio
{
    // Device-independent feature bits.
    public const int FRingIndirectDesc = 28;
    public const int FRingEventIdx = 29;
    public const int FVersion1 = 32;

    // virtio-blk feature bits.
    public const int BlkFSizeMax = 1;
    public const int BlkFSegMax = 2;
    public const int BlkFRo = 5;
    public const int BlkFBlkSize = 6;
    public const int BlkFFlush = 9;
    public const int BlkFTopology = 10;
    public const int BlkFConfigWce = 11;
    public const int BlkFMq = 12;
    public const int BlkFDiscard = 13;
    public const int BlkFWriteZeroes = 14;

    // Descriptor flags.
    public const ushort DescFNext = 1;
    public const ushort DescFWrite = 2;
    public const ushort DescFIndirect = 4;

    // Request types.
    public const uint BlkTIn = 0;
    public const uint BlkTOut = 1;
    public const uint BlkTFlush = 4;
    public const uint BlkTGetId = 8;
    public const uint BlkTDiscard = 11;
    public const uint BlkTWriteZeroes = 13;

    // Status values.
    public const byte BlkSOk = 0;
    public const byte BlkSIoErr = 1;
    public const byte BlkSUnsupp = 2;

    public const int BlkIdBytes = 20;
    public const int BlkOutHdrSize = 16;
    public const int DiscardSegmentSize = 16;
    public const uint WriteZeroesFlagUnmap = 1;
    public const int SectorShift = 9;
}
