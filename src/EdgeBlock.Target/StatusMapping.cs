using EdgeBlock.Nvme;
using EdgeBlock.Storage;

namespace EdgeBlock.Target;

/// <summary>The one place where block-device outcomes become NVMe statuses.</summary>
public static class StatusMapping
{
    public static NvmeStatus FromBlockStatus(BlockStatus status, bool isWrite) => status switch
    {
        BlockStatus.Success => NvmeStatus.Success,
        BlockStatus.OutOfRange => NvmeStatus.LbaOutOfRange,
        BlockStatus.CapacityExceeded => NvmeStatus.CapacityExceeded,
        BlockStatus.NotReady => NvmeStatus.NamespaceNotReady,
        BlockStatus.NotSupported => NvmeStatus.InvalidOpcode,
        BlockStatus.ReadError => NvmeStatus.UnrecoveredReadError,
        BlockStatus.WriteError => NvmeStatus.WriteFault,
        _ => isWrite ? NvmeStatus.WriteFault : NvmeStatus.InternalError,
    };
}
