namespace EdgeBlock.Transports.VhostUser;

/// <summary>
/// What the front-end told us about one virtqueue (SET_VRING_NUM, SET_VRING_ADDR, SET_FEATURES).
/// Immutable: the connection builds a new one per message and hands it to a stopped queue, which
/// takes it at its next start, so a running ring never sees half of a change.
/// </summary>
internal sealed record VirtqConfig
{
    public static readonly VirtqConfig Unset = new();

    /// <summary>Entries in the ring (a power of two), 0 until SET_VRING_NUM.</summary>
    public int Size { get; init; }

    /// <summary>Front-end (QEMU process) virtual addresses of the descriptor table, available and used rings.</summary>
    public ulong DescUserAddress { get; init; }
    public ulong AvailUserAddress { get; init; }
    public ulong UsedUserAddress { get; init; }

    /// <summary>SET_VRING_ADDR arrived (and, when memory was mapped, its addresses translated).</summary>
    public bool AddressesSet { get; init; }

    /// <summary>VIRTIO_RING_F_INDIRECT_DESC negotiated.</summary>
    public bool IndirectDesc { get; init; }

    /// <summary>VIRTIO_RING_F_EVENT_IDX negotiated: used_event/avail_event instead of always notifying.</summary>
    public bool EventIdx { get; init; }

    /// <summary>This configuration with the ring features of a negotiated feature set.</summary>
    public VirtqConfig WithFeatures(ulong features) => this with
    {
        IndirectDesc = (features & 1UL << Virtio.FRingIndirectDesc) != 0,
        EventIdx = (features & 1UL << Virtio.FRingEventIdx) != 0,
    };
}
