namespace EdgeBlock.Storage;

/// <summary>
/// The one place where Linux errors become <see cref="BlockStatus"/> values, like nvmet's
/// errno_to_nvme_status: space problems are Capacity Exceeded, everything else is the
/// operation's own failure.
/// </summary>
internal static class ErrnoMapping
{
    /// <param name="errno">0 for success.</param>
    /// <param name="failure">What a failure of this operation is: ReadError or WriteError.</param>
    public static BlockStatus ToStatus(int errno, BlockStatus failure) => errno switch
    {
        0 => BlockStatus.Success,
        Native.ENOSPC or Native.EDQUOT => BlockStatus.CapacityExceeded,
        _ => failure,
    };

    /// <summary>Maps what RandomAccess throws; anything unexpected is our bug, hence InternalError.</summary>
    public static BlockStatus ToStatus(Exception exception, BlockStatus failure) => exception switch
    {
        ObjectDisposedException => BlockStatus.NotReady,
        // For failed syscalls .NET on Unix raises IOExceptions whose HResult is the errno.
        IOException { HResult: Native.ENOSPC or Native.EDQUOT } => BlockStatus.CapacityExceeded,
        IOException or UnauthorizedAccessException => failure,
        _ => BlockStatus.InternalError,
    };
}
