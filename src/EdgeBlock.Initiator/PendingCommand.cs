using System.Diagnostics;
using EdgeBlock.Nvme;
using EdgeBlock.Threading;

namespace EdgeBlock.Initiator;

/// <summary>
/// One command slot of a queue (the host's view of an outstanding SQE). Preallocated; the caller's
/// ValueTask is backed by the slot itself, so a command in steady state allocates nothing.
/// The slot returns to the free list when the caller reads the result (exactly once).
/// </summary>
internal sealed class PendingCommand : ReusableValueTaskSource<NvmeCompletion>
{
    public const int StateFree = 0, StateInFlight = 1, StateCompleted = 2;

    private readonly NvmeTcpQueue _queue;
    private int _state;
    private byte _generation;

    public PendingCommand(NvmeTcpQueue queue, int index, bool inlineCompletions)
        : base(runContinuationsAsynchronously: !inlineCompletions)
    {
        _queue = queue;
        Index = index;
    }

    /// <summary>Slot index: the low bits of the command identifier.</summary>
    public int Index { get; }

    /// <summary>The SQE as sent (CID, PSDT and SGL1 filled in by the queue).</summary>
    public byte[] Sqe { get; } = new byte[SubmissionQueueEntry.Size];

    /// <summary>Index plus a 4-bit generation (as Linux does), so a late or duplicate completion is caught.</summary>
    public ushort CommandId { get; private set; }

    public TransferDirection Direction { get; private set; }
    public Memory<byte> Data { get; private set; }
    public bool InCapsule { get; private set; }

    /// <summary>C2H bytes received so far (DATAO must continue from here).</summary>
    public int C2HReceived { get; set; }
    /// <summary>A C2HData PDU of this command failed its data digest: the command ends with Data Transfer Error.</summary>
    public bool DataDigestFailed { get; set; }

    public int State => Volatile.Read(ref _state);
    /// <summary>Takes the slot for a new command; called with a credit held, so the slot is free.</summary>
    public ushort Arm(TransferDirection direction, Memory<byte> data, bool inCapsule)
    {
        Debug.Assert(_state == StateFree, "arming a slot that is in use");
        _generation = (byte)((_generation + 1) & 0xF);
        CommandId = (ushort)(_generation << NvmeTcpQueue.CidIndexBits | Index);
        Direction = direction;
        Data = data;
        InCapsule = inCapsule;
        C2HReceived = 0;
        DataDigestFailed = false;
        Volatile.Write(ref _state, StateInFlight);
        return CommandId;
    }

    public bool TryComplete(in NvmeCompletion completion)
    {
        if (Interlocked.CompareExchange(ref _state, StateCompleted, StateInFlight) != StateInFlight) return false;
        SetResult(completion);
        return true;
    }

    public bool TryFail(Exception error)
    {
        if (Interlocked.CompareExchange(ref _state, StateCompleted, StateInFlight) != StateInFlight) return false;
        SetException(error);
        return true;
    }

    protected override void OnResultTaken()
    {
        Data = default;
        Volatile.Write(ref _state, StateFree);
        _queue.ReleaseSlot(this);
    }
}
