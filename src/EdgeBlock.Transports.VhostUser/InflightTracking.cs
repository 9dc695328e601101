namespace EdgeBlock.Transports.VhostUser;

/// <summary>
/// The shared in-flight area of VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD for split rings (vhost-user.rst,
/// "Inflight I/O tracking"). We create it (GET_INFLIGHT_FD), QEMU keeps it across our restarts and
/// hands it back (SET_INFLIGHT_FD), so a back-end that crashed with requests in flight can resubmit
/// them instead of leaving the guest waiting forever. Layout of one queue's region, which only we
/// interpret: a 16-byte header (features u64, version u16, desc_num u16, last_batch_head u16,
/// used_idx u16), then per descriptor 16 bytes (inflight u8, padding, next u16 at 6, counter u64 at 8),
/// rounded up to 64 bytes.
/// </summary>
internal static class InflightTracking
{
    public const ushort Version = 1;
    public const int HeaderSize = 16;
    public const int DescStateSize = 16;
    public const int VersionOffset = 8;
    public const int DescNumOffset = 10;
    public const int LastBatchHeadOffset = 12;
    public const int UsedIdxOffset = 14;
    public const int InflightOffset = 0;
    public const int NextOffset = 6;
    public const int CounterOffset = 8;

    /// <summary>Bytes of one queue's region.</summary>
    public static long QueueRegionSize(int queueSize) => (HeaderSize + (long)DescStateSize * queueSize + 63) & ~63L;

    public static unsafe void Initialize(nint region, int queueSize)
    {
        new Span<byte>((void*)region, (int)QueueRegionSize(queueSize)).Clear();
        *(ushort*)(region + VersionOffset) = Version;
        *(ushort*)(region + DescNumOffset) = (ushort)queueSize;
    }
}
