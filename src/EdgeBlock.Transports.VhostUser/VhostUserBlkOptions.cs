namespace EdgeBlock.Transports.VhostUser;

/// <summary>Settings of one vhost-user-blk export.</summary>
public sealed class VhostUserBlkOptions
{
    /// <summary>Most virtqueues the front-end may use (GET_QUEUE_NUM, config num_queues). QEMU's num-queues must not exceed it.</summary>
    public int MaxQueues { get; init; } = 8;

    /// <summary>Largest virtqueue size accepted (SET_VRING_NUM); QEMU's default queue-size is 128.</summary>
    public int MaxQueueSize { get; init; } = 1024;

    /// <summary>seg_max in the config space: data segments per request (QEMU uses queue size - 2).</summary>
    public int SegMax { get; init; } = 126;

    /// <summary>Largest data transfer of one request; larger ones fail with IOERR.</summary>
    public int MaxTransferBytes { get; init; } = 32 * 1024 * 1024;

    /// <summary>
    /// Where bounce buffers come from (requests whose data is spread over guest buffers): the daemon's pool under
    /// its memory budget; null: the shared default pool.
    /// </summary>
    public Storage.DataBufferPool? Buffers { get; init; }

    /// <summary>Serial number returned by GET_ID (at most 20 ASCII bytes).</summary>
    public string Serial { get; init; } = "edgeblock";

    /// <summary>Export read-only (VIRTIO_BLK_F_RO): writes, discards and write-zeroes fail.</summary>
    public bool ReadOnly { get; init; }

    /// <summary>
    /// Offer VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD: requests in flight are recorded in memory QEMU
    /// keeps, so after a crash of this process the next one resubmits them (QEMU reconnects).
    /// </summary>
    public bool InflightTracking { get; init; } = true;

    /// <summary>Offer VIRTIO_RING_F_EVENT_IDX (fewer kicks and interrupts).</summary>
    public bool EventIndex { get; init; } = true;

    /// <summary>Offer VIRTIO_RING_F_INDIRECT_DESC.</summary>
    public bool IndirectDescriptors { get; init; } = true;

    /// <summary>
    /// Longest a stopping export (server disposed, front-end gone) waits for requests inside the
    /// device. After it the export logs how many are still in flight and stops anyway, leaving
    /// their guest memory mapped for the late completions. Infinite: wait as long as it takes.
    /// </summary>
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(10);
}
