namespace EdgeBlock.Transports.Ublk;

/// <summary>How a device is presented to the kernel.</summary>
public sealed record UblkOptions
{
    /// <summary>Hardware queues; one thread and one io_uring each.</summary>
    public int Queues { get; init; } = 1;

    /// <summary>Requests in flight per queue; each tag owns a buffer of <see cref="MaxIoBytes"/>.</summary>
    public int QueueDepth { get; init; } = 64;

    /// <summary>The largest read or write the kernel sends (max_sectors × 512): NVMe/TCP's MDTS, 128 KiB.</summary>
    public int MaxIoBytes { get; init; } = 128 * 1024;

    public bool ReadOnly { get; init; }

    /// <summary>How long stopping waits for a queue's thread to hand back its requests before it closes the ring anyway.</summary>
    public TimeSpan StopTimeout { get; init; } = TimeSpan.FromSeconds(10);

    internal void Validate()
    {
        if (Queues is < 1 or > 64) throw new ArgumentOutOfRangeException(nameof(Queues), Queues, "1..64");
        if (QueueDepth is < 1 or > UblkAbi.MaxQueueDepth) throw new ArgumentOutOfRangeException(nameof(QueueDepth), QueueDepth, $"1..{UblkAbi.MaxQueueDepth}");
        if (MaxIoBytes < 4096 || MaxIoBytes % 4096 != 0 || MaxIoBytes > 1 << 20)
            throw new ArgumentOutOfRangeException(nameof(MaxIoBytes), MaxIoBytes, "a multiple of 4096 up to 1 MiB");
    }
}
