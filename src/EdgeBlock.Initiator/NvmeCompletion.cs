using EdgeBlock.Nvme;

namespace EdgeBlock.Initiator;

/// <summary>
/// What a command ended with: the CQE fields (status, result DW0/DW1, SQHD, SQID, CID).
/// A C2HData PDU with the SUCCESS flag stands in for a CQE; then only Status and CommandId are meaningful.
/// </summary>
public readonly record struct NvmeCompletion(NvmeStatus Status, ulong Result, ushort SqHead, ushort SqId, ushort CommandId)
{
    public bool IsSuccess => Status.IsSuccess;

    /// <summary>Completion dword 0 (command specific result).</summary>
    public uint Dw0 => (uint)Result;

    public override string ToString() => $"{Status} DW0 {Dw0:X8}h CID {CommandId:X4}h SQ {SqId} SQHD {SqHead}";
}

/// <summary>A completion plus the data a command returned, parsed (Identify, log pages).</summary>
public readonly record struct NvmeResult<T>(NvmeCompletion Completion, T? Value)
{
    public NvmeStatus Status => Completion.Status;
    public bool IsSuccess => Completion.IsSuccess;
}

/// <summary>Which way a command moves data.</summary>
public enum TransferDirection : byte
{
    None,
    /// <summary>Host to controller: in-capsule data or H2CData after an R2T.</summary>
    HostToController,
    /// <summary>Controller to host: C2HData.</summary>
    ControllerToHost,
}
