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

/// <summary>
/// One queue's region of the in-flight area, or none (default). A device marks a head before it
/// looks at the chain and clears it after the used element is published; last_batch_head and
/// used_idx let the next back-end tell a completion that was cut short from one never made.
/// </summary>
internal readonly unsafe struct InflightRegion
{
    private readonly nint _region;

    public InflightRegion(nint region) => _region = region;

    public bool IsMapped => _region != 0;

    private byte* State(ushort head) => (byte*)(_region + InflightTracking.HeaderSize + head * InflightTracking.DescStateSize);

    /// <summary>Before the chain is used: counter orders resubmission like the original submission.</summary>
    public void MarkInflight(ushort head, ulong counter)
    {
        byte* state = State(head);
        *(ulong*)(state + InflightTracking.CounterOffset) = counter;
        Volatile.Write(ref state[InflightTracking.InflightOffset], (byte)1);
    }

    public void ClearInflight(ushort head) => Volatile.Write(ref State(head)[InflightTracking.InflightOffset], (byte)0);

    /// <summary>Before the used element is written: names the head a crash right after may have left half done.</summary>
    public void SetLastBatchHead(ushort head) => Volatile.Write(ref *(ushort*)(_region + InflightTracking.LastBatchHeadOffset), head);

    /// <summary>After the in-flight mark is cleared: the used index that mark's completion produced.</summary>
    public void SetUsedIdx(ushort usedIdx) => Volatile.Write(ref *(ushort*)(_region + InflightTracking.UsedIdxOffset), usedIdx);

    /// <summary>
    /// Reads the region when a ring of size entries starts at used index usedIdx: (re)initializes
    /// one that is not ours, finishes a completion cut short between publishing and clearing, and
    /// returns the heads still marked in their submission order, with the next counter to use.
    /// </summary>
    public ushort[] Recover(int size, ushort usedIdx, out ulong nextCounter)
    {
        nint t = _region;
        if (*(ushort*)(t + InflightTracking.VersionOffset) != InflightTracking.Version ||
            *(ushort*)(t + InflightTracking.DescNumOffset) != size)
        {
            InflightTracking.Initialize(t, size);
        }
        if (*(ushort*)(t + InflightTracking.UsedIdxOffset) != usedIdx)
        {
            // Stopped between publishing a used entry and clearing its in-flight mark: it is done.
            ushort last = *(ushort*)(t + InflightTracking.LastBatchHeadOffset);
            if (last < size)
            {
                State(last)[InflightTracking.InflightOffset] = 0;
            }
            *(ushort*)(t + InflightTracking.UsedIdxOffset) = usedIdx;
        }
        var found = new List<(ulong Counter, ushort Head)>();
        ulong maxCounter = 0;
        for (int i = 0; i < size; i++)
        {
            byte* d = State((ushort)i);
            ulong counter = *(ulong*)(d + InflightTracking.CounterOffset);
            maxCounter = Math.Max(maxCounter, counter);
            if (d[InflightTracking.InflightOffset] != 0)
            {
                found.Add((counter, (ushort)i));
            }
        }
        nextCounter = maxCounter + 1;
        found.Sort();
        var heads = new ushort[found.Count];
        for (int i = 0; i < heads.Length; i++)
        {
            heads[i] = found[i].Head;
        }
        return heads;
    }
}
