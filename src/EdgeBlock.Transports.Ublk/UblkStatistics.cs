namespace EdgeBlock.Transports.Ublk;

/// <summary>Requests a device served since it started (summed over its queues when read).</summary>
public readonly record struct UblkStatistics(long Requests, long Failed, long BytesRead, long BytesWritten)
{
    public static UblkStatistics operator +(UblkStatistics a, UblkStatistics b) =>
        new(a.Requests + b.Requests, a.Failed + b.Failed, a.BytesRead + b.BytesRead, a.BytesWritten + b.BytesWritten);
}
