namespace EdgeBlock.Nvme;

/// <summary>Status Code Type (NVMe base spec, Completion Queue Entry status field).</summary>
public enum StatusCodeType : byte
{
    Generic = 0,
    CommandSpecific = 1,
    MediaAndDataIntegrity = 2,
    PathRelated = 3,
}

/// <summary>
/// The 15-bit status of a completion (everything but the phase bit): SC, SCT, CRD, More, DNR.
/// A value type so that completing a command never allocates.
/// </summary>
public readonly record struct NvmeStatus(StatusCodeType Sct, byte Sc, bool Dnr = false, bool More = false)
{
    public bool IsSuccess => Sct == StatusCodeType.Generic && Sc == 0;

    /// <summary>The CQE status field (bits 15:1 of DW3's upper half; bit 0, the phase, stays 0 on fabrics).</summary>
    public ushort ToField() =>
        (ushort)((Sc << 1) | ((byte)Sct << 9) | (More ? 1 << 14 : 0) | (Dnr ? 1 << 15 : 0));

    public static NvmeStatus FromField(ushort field) =>
        new((StatusCodeType)((field >> 9) & 0x7), (byte)((field >> 1) & 0xFF), (field & 0x8000) != 0, (field & 0x4000) != 0);

    public NvmeStatus WithDnr() => this with { Dnr = true };

    public override string ToString() => $"SCT {(byte)Sct:X}h SC {Sc:X2}h{(Dnr ? " DNR" : "")}";

    // Generic command status (SCT 0)
    public static readonly NvmeStatus Success = new(StatusCodeType.Generic, 0x00);
    public static readonly NvmeStatus InvalidOpcode = new(StatusCodeType.Generic, 0x01, Dnr: true);
    public static readonly NvmeStatus InvalidField = new(StatusCodeType.Generic, 0x02, Dnr: true);
    public static readonly NvmeStatus CommandIdConflict = new(StatusCodeType.Generic, 0x03, Dnr: true);
    public static readonly NvmeStatus DataTransferError = new(StatusCodeType.Generic, 0x04);
    public static readonly NvmeStatus InternalError = new(StatusCodeType.Generic, 0x06);
    public static readonly NvmeStatus AbortRequested = new(StatusCodeType.Generic, 0x07);
    public static readonly NvmeStatus AbortedSqDeletion = new(StatusCodeType.Generic, 0x08);
    public static readonly NvmeStatus InvalidNamespace = new(StatusCodeType.Generic, 0x0B, Dnr: true);
    public static readonly NvmeStatus CommandSequenceError = new(StatusCodeType.Generic, 0x0C, Dnr: true);
    public static readonly NvmeStatus DataSglLengthInvalid = new(StatusCodeType.Generic, 0x0F, Dnr: true);
    public static readonly NvmeStatus SglDescriptorTypeInvalid = new(StatusCodeType.Generic, 0x11, Dnr: true);
    public static readonly NvmeStatus SglOffsetInvalid = new(StatusCodeType.Generic, 0x16, Dnr: true);
    public static readonly NvmeStatus KeepAliveTimerExpired = new(StatusCodeType.Generic, 0x19, Dnr: true);
    public static readonly NvmeStatus KeepAliveTimeoutInvalid = new(StatusCodeType.Generic, 0x1A, Dnr: true);
    public static readonly NvmeStatus TransientTransportError = new(StatusCodeType.Generic, 0x22);
    public static readonly NvmeStatus LbaOutOfRange = new(StatusCodeType.Generic, 0x80, Dnr: true);
    public static readonly NvmeStatus CapacityExceeded = new(StatusCodeType.Generic, 0x81, Dnr: true);
    public static readonly NvmeStatus NamespaceNotReady = new(StatusCodeType.Generic, 0x82);

    // Command specific status (SCT 1)
    public static readonly NvmeStatus AbortCommandLimitExceeded = new(StatusCodeType.CommandSpecific, 0x03, Dnr: true);
    public static readonly NvmeStatus AsyncEventRequestLimitExceeded = new(StatusCodeType.CommandSpecific, 0x05, Dnr: true);
    public static readonly NvmeStatus InvalidLogPage = new(StatusCodeType.CommandSpecific, 0x09, Dnr: true);
    public static readonly NvmeStatus FeatureIdNotSaveable = new(StatusCodeType.CommandSpecific, 0x0D, Dnr: true);
    public static readonly NvmeStatus FeatureNotChangeable = new(StatusCodeType.CommandSpecific, 0x0E, Dnr: true);
    public static readonly NvmeStatus ConnectIncompatibleFormat = new(StatusCodeType.CommandSpecific, 0x80, Dnr: true);
    public static readonly NvmeStatus ConnectControllerBusy = new(StatusCodeType.CommandSpecific, 0x81, Dnr: true);
    public static readonly NvmeStatus ConnectInvalidParameters = new(StatusCodeType.CommandSpecific, 0x82, Dnr: true);
    public static readonly NvmeStatus ConnectInvalidHost = new(StatusCodeType.CommandSpecific, 0x84, Dnr: true);
    /// <summary>Authentication Required (SCT 1h, SC 91h): the queue has not finished DH-HMAC-CHAP.</summary>
    public static readonly NvmeStatus AuthenticationRequired = new(StatusCodeType.CommandSpecific, 0x91, Dnr: true);

    // Media and data integrity errors (SCT 2)
    public static readonly NvmeStatus WriteFault = new(StatusCodeType.MediaAndDataIntegrity, 0x80);
    public static readonly NvmeStatus UnrecoveredReadError = new(StatusCodeType.MediaAndDataIntegrity, 0x81);
    public static readonly NvmeStatus CompareFailure = new(StatusCodeType.MediaAndDataIntegrity, 0x85, Dnr: true);
}
