using System.Diagnostics;

namespace EdgeBlock.Transports.Ublk;

/// <summary>
/// Tags whose device operation completed on some other thread, on their way back to the queue's thread (the only
/// one the driver accepts COMMIT_AND_FETCH from). Many producers, one consumer, no allocation: a tag is in flight
/// at most once, so a ring of queue-depth slots never overflows. A producer claims a slot, then publishes the tag
/// in it; the consumer stops at the first slot not yet published (its producer wakes it once it is).
/// </summary>
internal sealed class CompletionRing
{
    private readonly int[] _slots; // tag + 1; 0 = empty
    private readonly int _mask;
    private long _tail;
    private long _head;

    public CompletionRing(int depth)
    {
        int capacity = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)depth);
        _slots = new int[capacity];
        _mask = capacity - 1;
    }

    public void Enqueue(int tag)
    {
        long index = Interlocked.Increment(ref _tail) - 1;
        Debug.Assert(index - Volatile.Read(ref _head) < _slots.Length, "more completions than tags");
        Volatile.Write(ref _slots[index & _mask], tag + 1);
    }

    /// <summary>Consumer only.</summary>
    public bool TryDequeue(out int tag)
    {
        ref int slot = ref _slots[_head & _mask];
        int value = Volatile.Read(ref slot);
        if (value == 0)
        {
            tag = -1;
            return false;
        }
        slot = 0;
        Volatile.Write(ref _head, _head + 1);
        tag = value - 1;
        return true;
    }

    /// <summary>Consumer only: a published tag is waiting.</summary>
    public bool HasItems => Volatile.Read(ref _slots[_head & _mask]) != 0;
}
