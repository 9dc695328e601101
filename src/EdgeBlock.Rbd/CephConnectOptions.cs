namespace EdgeBlock.Rbd;

/// <summary>
/// How to reach a Ceph cluster and which RADOS pool holds the images. The keyring is passed to librados by
/// path: the key itself never passes through EdgeBlock (nor into a log or an API answer).
/// </summary>
public sealed record CephConnectOptions(string ConfPath, string Pool = "rbd", string? User = null, string? KeyringPath = null)
{
    /// <summary>
    /// Client timeouts (rados osd op, mon op, client mount): without them librados waits forever for a cluster
    /// that is full or gone, and so would every I/O and management call. Ops then fail with ETIMEDOUT.
    /// </summary>
    public TimeSpan OpTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The cephx entity name: "client.admin" unless a user is given ("edgeblock" or "client.edgeblock").</summary>
    public string EntityName => User is null ? "client.admin" : User.StartsWith("client.", StringComparison.Ordinal) ? User : "client." + User;
}
