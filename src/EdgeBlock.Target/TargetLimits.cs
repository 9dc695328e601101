namespace EdgeBlock.Target;

/// <summary>Limits the target advertises and enforces. Units are in the names.</summary>
public sealed record TargetLimits
{
    /// <summary>I/O queues per controller.</summary>
    public int MaxIoQueues { get; init; } = 64;
    /// <summary>Entries per queue (CAP.MQES + 1).</summary>
    public int MaxQueueEntries { get; init; } = 1024;
    /// <summary>MDTS as a power of two of 4 KiB pages: 5 = 128 KiB, as SPDK.</summary>
    public byte MdtsPow2 { get; init; } = 5;
    public int MaxTransferBytes => 4096 << MdtsPow2;
    /// <summary>In-capsule data on I/O queues: writes up to this size travel without an R2T round trip.</summary>
    public int InCapsuleDataBytes { get; init; } = 16384;
    /// <summary>In-capsule data on admin queues (Connect data is 1 KiB).</summary>
    public int AdminInCapsuleDataBytes { get; init; } = 8192;
    /// <summary>CAP.TO in 500 ms units: how long a host waits for CSTS.RDY.</summary>
    public int ReadyTimeoutHalfSeconds { get; init; } = 15;
}
