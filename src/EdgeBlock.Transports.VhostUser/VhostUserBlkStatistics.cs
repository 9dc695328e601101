namespace EdgeBlock.Transports.VhostUser;

/// <summary>Requests an export completed (failed ones included), failed, and data moved, since it started serving.</summary>
public readonly record struct VhostUserBlkStatistics(long Requests, long Failed, long BytesRead, long BytesWritten)
{
    public static VhostUserBlkStatistics operator +(VhostUserBlkStatistics a, VhostUserBlkStatistics b) =>
        new(a.Requests + b.Requests, a.Failed + b.Failed, a.BytesRead + b.BytesRead, a.BytesWritten + b.BytesWritten);
}
