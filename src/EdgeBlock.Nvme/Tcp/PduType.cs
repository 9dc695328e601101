namespace EdgeBlock.Nvme.Tcp;

/// <summary>NVMe/TCP PDU types (TCP transport binding, PDU common header PDU-type).</summary>
public enum PduType : byte
{
    ICReq = 0x00,
    ICResp = 0x01,
    H2CTermReq = 0x02,
    C2HTermReq = 0x03,
    CapsuleCmd = 0x04,
    CapsuleResp = 0x05,
    H2CData = 0x06,
    C2HData = 0x07,
    R2T = 0x09,
}

/// <summary>PDU common header flags.</summary>
[Flags]
public enum PduFlags : byte
{
    None = 0,
    /// <summary>A header digest follows the header.</summary>
    Hdgstf = 0x01,
    /// <summary>A data digest follows the data.</summary>
    Ddgstf = 0x02,
    /// <summary>Last data PDU of a command (H2CData/C2HData).</summary>
    LastPdu = 0x04,
    /// <summary>C2HData: the command succeeded; no CapsuleResp follows.</summary>
    Success = 0x08,
}

/// <summary>Fatal error status of a C2HTermReq/H2CTermReq.</summary>
public enum TermReqFes : ushort
{
    InvalidPduHeaderField = 0x01,
    PduSequenceError = 0x02,
    HeaderDigestError = 0x03,
    DataTransferOutOfRange = 0x04,
    DataTransferLimitExceeded = 0x05,
    UnsupportedParameter = 0x06,
}
