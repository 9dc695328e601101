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

    // Commands inside the device right now, and whether the namespace is closing. A command enters
    // with TryEnter (count first, then check the flag) and DrainAsync sets the flag before it reads
    // the count, so once DrainAsync saw zero no command can reach the device again.
    private long _inFlight;
    private int _closing;
    private TaskCompletionSource? _drained;

    /// <summary>Commands currently executing on the device.</summary>
    public long InFlight => Interlocked.Read(ref _inFlight);

    /// <summary>True once <see cref="DrainAsync"/> was called: commands no longer reach the device.</summary>
    public bool IsClosing => Volatile.Read(ref _closing) != 0;

    /// <summary>Admits one command to the device; false once the namespace is closing (fail the command instead).</summary>
    internal bool TryEnter()
    {
        Interlocked.Increment(ref _inFlight);
        if (Volatile.Read(ref _closing) == 0) return true;
        Exit();
        return false;
    }

    /// <summary>A command admitted by <see cref="TryEnter"/> is done with the device.</summary>
    internal void Exit()
    {
        if (Interlocked.Decrement(ref _inFlight) == 0 && Volatile.Read(ref _closing) != 0)
            Volatile.Read(ref _drained)?.TrySetResult();
    }

    /// <summary>
    /// Stops admitting commands and waits until those on the device finished, at most
    /// <paramref name="maxWait"/>. Returns how many were still in flight (0: drained; the device
    /// can be closed). Call after the namespace left its subsystem, so no new command finds it.
    /// </summary>
    public async Task<long> DrainAsync(TimeSpan maxWait, CancellationToken cancellationToken = default)
    {
        var drained = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Interlocked.CompareExchange(ref _drained, drained, null);
        drained = _drained!;
        Interlocked.Exchange(ref _closing, 1);
        if (InFlight == 0) return 0;
        try
        {
            await drained.Task.WaitAsync(maxWait, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
        }
        return InFlight;
    }
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
