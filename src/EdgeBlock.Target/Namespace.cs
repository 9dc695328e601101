using EdgeBlock.Storage;

namespace EdgeBlock.Target;

/// <summary>A namespace of a subsystem: an NSID bound to a block device, with stable identifiers.</summary>
public sealed class Namespace
{
    public Namespace(uint nsid, IBlockDevice device, Guid uuid)
    {
        if (nsid is 0 or 0xFFFFFFFF) throw new ArgumentOutOfRangeException(nameof(nsid), nsid, "NSID 0 and FFFFFFFFh are reserved");
        Nsid = nsid;
        Device = device;
        Uuid = uuid;
        Nguid = uuid.ToByteArray(bigEndian: true);
    }

    public uint Nsid { get; }
    public IBlockDevice Device { get; }
    public Guid Uuid { get; }
    /// <summary>16-byte namespace globally unique identifier; derived from the UUID so both stay stable together.</summary>
    public byte[] Nguid { get; }

    public int BlockSize => Device.BlockSize;
    public long BlockCount => Device.BlockCount;

    /// <summary>I/O counters for the SMART log (Interlocked: shared by all queues, touched once per command).</summary>
    public NamespaceCounters Counters { get; } = new();
}

public sealed class NamespaceCounters
{
    public long ReadCommands;
    public long WriteCommands;
    public long BytesRead;
    public long BytesWritten;
    public long Errors;
    /// <summary>Flush, Write Zeroes, Dataset Management and Compare commands on this namespace.</summary>
    public long OtherCommands;

    /// <summary>Time from a command's arrival (its parse) to its completion being ready, by kind.</summary>
    public LatencyHistogram ReadLatency { get; } = new();
    public LatencyHistogram WriteLatency { get; } = new();
    public LatencyHistogram OtherLatency { get; } = new();

    /// <summary>The <see cref="Errors"/> by NVMe status.</summary>
    public StatusCounts ErrorsByStatus { get; } = new();
}
