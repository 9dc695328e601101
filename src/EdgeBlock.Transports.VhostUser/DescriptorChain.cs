namespace EdgeBlock.Transports.VhostUser;

/// <summary>One guest buffer (after translation): host pointer and length.</summary>
internal struct Segment
{
    public nint Pointer;
    public int Length;
}

/// <summary>
/// A chain taken off the available ring, by its head: the translated buffers in chain order,
/// split into device-readable and device-writable ones (2.6.4), and what goes back in the used
/// element. Reused for every chain with this head, so walking one allocates nothing.
/// </summary>
internal class VirtqElement
{
    protected VirtqElement(ushort head) => Head = head;

    public readonly ushort Head;

    /// <summary>Readable (driver-to-device) and writable segments in chain order.</summary>
    public Segment[] Readable = new Segment[4];
    public Segment[] Writable = new Segment[4];
    public int ReadableCount;
    public int WritableCount;
    public long ReadableBytes;
    public long WritableBytes;

    /// <summary>Taken off the available ring and not yet put on the used ring.</summary>
    public bool InFlight;

    /// <summary>The used element's len: bytes the device wrote into the writable buffers.</summary>
    public uint UsedLength;

    public virtual void Reset()
    {
        ReadableCount = 0;
        WritableCount = 0;
        ReadableBytes = 0;
        WritableBytes = 0;
        UsedLength = 0;
    }

    public void AddSegment(bool writable, nint pointer, int length)
    {
        if (writable)
        {
            Append(ref Writable, ref WritableCount, pointer, length);
            WritableBytes += length;
        }
        else
        {
            Append(ref Readable, ref ReadableCount, pointer, length);
            ReadableBytes += length;
        }
    }

    private static void Append(ref Segment[] segments, ref int count, nint pointer, int length)
    {
        if (count == segments.Length)
        {
            Array.Resize(ref segments, segments.Length * 2); // once per slot, at its longest chain
        }
        segments[count++] = new Segment { Pointer = pointer, Length = length };
    }
}

/// <summary>
/// Walks a descriptor chain (2.6.5), indirect tables included (2.6.5.3), translating every buffer
/// through the memory table. Two kinds of trouble are told apart: a chain that cannot be walked
/// (an index out of its table, a loop, an indirect descriptor where the spec forbids one) means
/// the ring itself is broken; a walkable chain with a bad buffer only fails its request.
/// </summary>
internal static unsafe class DescriptorChain
{
    /// <summary>Largest indirect table accepted (the spec bounds it only by the driver's queue size).</summary>
    public const int MaxIndirectDescriptors = 4096;

    /// <summary>
    /// Walks the chain from e.Head into e's segment lists. Returns a reason when the chain cannot
    /// be walked (the ring is broken); sets content to a reason when the chain is walkable but
    /// unusable (the request fails). maxTransferBytes bounds one buffer: no request may carry more.
    /// </summary>
    public static string? Walk(in SplitRing ring, GuestMemory memory, bool indirectDesc, int maxTransferBytes, VirtqElement e, out string? content)
    {
        content = null;
        nint table = ring.DescTable;
        int tableSize = ring.Size;
        int index = e.Head;
        int budget = ring.Size; // a chain visits each entry of its table at most once, or it loops
        bool indirect = false;
        bool sawWritable = false;
        while (true)
        {
            if (budget-- == 0)
            {
                return $"the descriptor chain from head {e.Head} has more entries than its table ({tableSize}): it loops";
            }
            VirtqDesc d = SplitRing.ReadDesc(table, index);
            if (d.IsIndirect)
            {
                string? error = EnterIndirect(d, index, e.Head, indirectDesc, indirect, memory, out table);
                if (error is not null)
                {
                    return error;
                }
                tableSize = (int)(d.Len / SplitRing.DescSize);
                index = 0;
                budget = tableSize;
                indirect = true;
                continue;
            }
            if (d.IsWrite)
            {
                sawWritable = true;
            }
            else if (sawWritable)
            {
                // 2.6.4.2: device-writable buffers come after all device-readable ones.
                content ??= $"descriptor {index} is device-readable but follows a device-writable one";
            }
            if (d.Len > (uint)maxTransferBytes + 64)
            {
                content ??= $"descriptor {index} is {d.Len} bytes long, more than the largest transfer ({maxTransferBytes})";
                e.AddSegment(d.IsWrite, 0, 0);
            }
            else if (!memory.TryTranslate(d.Addr, d.Len, out nint host))
            {
                content ??= $"descriptor {index} (0x{d.Addr:x}, {d.Len} bytes) is not inside guest memory";
                e.AddSegment(d.IsWrite, 0, 0);
            }
            else
            {
                e.AddSegment(d.IsWrite, host, (int)d.Len);
            }
            if (!d.HasNext)
            {
                return null;
            }
            if (d.Next >= tableSize)
            {
                return $"descriptor {index} of head {e.Head} links to {d.Next}, beyond its table of {tableSize}";
            }
            index = d.Next;
        }
    }

    /// <summary>Checks an indirect descriptor (2.6.5.3.1) and translates its table.</summary>
    private static string? EnterIndirect(VirtqDesc d, int index, ushort head, bool negotiated, bool nested, GuestMemory memory, out nint table)
    {
        table = 0;
        if (!negotiated)
        {
            return $"descriptor {index} of head {head} is indirect, but VIRTIO_RING_F_INDIRECT_DESC was not negotiated";
        }
        if (nested)
        {
            return $"indirect descriptor {index} of head {head} sits inside an indirect table";
        }
        if (d.HasNext)
        {
            return $"indirect descriptor {index} of head {head} also has NEXT set";
        }
        if (d.Len == 0 || d.Len % SplitRing.DescSize != 0 || d.Len / SplitRing.DescSize > MaxIndirectDescriptors)
        {
            return $"indirect table of head {head} has a length of {d.Len} bytes (a multiple of 16 up to {MaxIndirectDescriptors} entries is required)";
        }
        if (!memory.TryTranslate(d.Addr, d.Len, out table) || (table & 15) != 0)
        {
            return $"indirect table of head {head} at 0x{d.Addr:x} (+{d.Len}) is outside guest memory or misaligned";
        }
        return null;
    }
}
