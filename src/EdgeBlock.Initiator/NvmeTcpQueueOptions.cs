namespace EdgeBlock.Initiator;

/// <summary>How one NVMe/TCP connection (queue) is set up.</summary>
public sealed record NvmeTcpQueueOptions
{
    /// <summary>In-capsule data on the admin queue before Identify says otherwise (Linux: NVME_TCP_ADMIN_CCSZ).</summary>
    public const int AdminInCapsuleDataBytes = 8192;

    /// <summary>Commands that may be outstanding at once (the queue's entries, SQSIZE + 1).</summary>
    public int QueueDepth { get; init; } = 128;

    /// <summary>Ask for header digests (CRC32C over every PDU header) in the ICReq.</summary>
    public bool HeaderDigest { get; init; }

    /// <summary>Ask for data digests (CRC32C over every PDU's data) in the ICReq.</summary>
    public bool DataDigest { get; init; }

    /// <summary>Writes up to this many bytes travel in the command capsule; larger ones wait for an R2T.</summary>
    public int InCapsuleDataBytes { get; init; } = AdminInCapsuleDataBytes;

    /// <summary>
    /// Run the caller's continuation on the receive loop when a command completes (fastest, but a continuation
    /// that blocks stalls the whole queue). Off by default: continuations go to the thread pool.
    /// </summary>
    public bool InlineCompletions { get; init; }

    /// <summary>TCP connect plus ICReq/ICResp must finish within this.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);
}

/// <summary>
/// PDU counters of one queue: which data path commands took (in-capsule vs R2T/H2CData, CapsuleResp vs C2HData SUCCESS).
/// Each counter has one writer at a time (the receive loop, or whoever holds the writer role).
/// </summary>
public sealed class NvmeTcpQueueStatistics
{
    internal long CapsulesSentField, InCapsuleWritesField, H2CDataPdusSentField, R2TsReceivedField, C2HDataPdusReceivedField,
        ResponsesReceivedField, SuccessFlagCompletionsField;

    public long CapsulesSent => Volatile.Read(ref CapsulesSentField);
    /// <summary>Capsules that carried their write data.</summary>
    public long InCapsuleWrites => Volatile.Read(ref InCapsuleWritesField);
    public long H2CDataPdusSent => Volatile.Read(ref H2CDataPdusSentField);
    public long R2TsReceived => Volatile.Read(ref R2TsReceivedField);
    public long C2HDataPdusReceived => Volatile.Read(ref C2HDataPdusReceivedField);
    public long ResponsesReceived => Volatile.Read(ref ResponsesReceivedField);
    /// <summary>Commands completed by a C2HData PDU with the SUCCESS flag (no CapsuleResp).</summary>
    public long SuccessFlagCompletions => Volatile.Read(ref SuccessFlagCompletionsField);
}
