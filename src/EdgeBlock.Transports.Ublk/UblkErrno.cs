using EdgeBlock.Storage;

namespace EdgeBlock.Transports.Ublk;

/// <summary>
/// The one place a device outcome becomes the result a request is committed with: bytes done, or a negative errno
/// the block layer turns into its status (ENOSPC → no space, EOPNOTSUPP → not supported, else an I/O error).
/// </summary>
internal static class UblkErrno
{
    public static int Result(BlockStatus status, int bytesOnSuccess) => status switch
    {
        BlockStatus.Success => bytesOnSuccess,
        BlockStatus.CapacityExceeded => -Native.ENOSPC,
        BlockStatus.NotSupported => -Native.EOPNOTSUPP,
        BlockStatus.OutOfRange => -Native.EINVAL,
        _ => -Native.EIO,
    };
}
