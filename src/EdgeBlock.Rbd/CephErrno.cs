using EdgeBlock.Storage;

namespace EdgeBlock.Rbd;

/// <summary>The one place a librbd I/O result (a negative errno) becomes a <see cref="BlockStatus"/>.</summary>
internal static class CephErrno
{
    public const int ENOENT = 2;
    public const int EEXIST = 17;
    public const int EINVAL = 22;
    public const int ENOSPC = 28;
    public const int EROFS = 30;
    public const int EBUSY = 16;
    public const int ERANGE = 34;
    public const int ENOTEMPTY = 39;
    public const int ENOTCONN = 107;
    public const int ESHUTDOWN = 108;
    public const int ETIMEDOUT = 110;
    public const int EDQUOT = 122;

    /// <summary>
    /// A cluster that is slow or gone (the client timeouts fired, or this client was blocklisted) is
    /// NotReady: Namespace Not Ready without DNR, so the host retries and other namespaces go on. A full
    /// cluster or pool quota is CapacityExceeded; the rest is a media error of the operation's direction.
    /// </summary>
    public static BlockStatus ToBlockStatus(long result, bool isRead) => result >= 0 ? BlockStatus.Success : (int)-result switch
    {
        ETIMEDOUT or ENOTCONN or ESHUTDOWN => BlockStatus.NotReady,
        ENOSPC or EDQUOT => BlockStatus.CapacityExceeded,
        EINVAL => BlockStatus.InternalError,
        _ => isRead ? BlockStatus.ReadError : BlockStatus.WriteError,
    };
}
