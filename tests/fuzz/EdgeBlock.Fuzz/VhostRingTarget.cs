using System.Buffers.Binary;
using EdgeBlock.Storage;
using EdgeBlock.Transports.VhostUser;

namespace EdgeBlock.Fuzz;

/// <summary>
/// Split-ring descriptor walking over a guest memory image the fuzzer writes: the input is a 4-byte header
/// (byte 0: log2 of the queue size mod 9, byte 1 bit 0: VIRTIO_RING_F_INDIRECT_DESC, bytes 2-3: the first
/// available index to serve) followed by guest memory from guest physical address 0, a memfd of
/// <see cref="MemoryBytes"/> mapped through the real <see cref="GuestMemory.Map"/>. The rings sit where a driver
/// puts them for that size: descriptors at 0, the available ring after them, the used ring 4-aligned after it.
/// Every entry the available ring offers is taken as VirtQueue.ProcessAvailable takes it and walked with the
/// real <see cref="DescriptorChain.Walk"/> and <see cref="VirtioBlkHandler.LocateStatus"/> (translation,
/// indirect tables, loops, lengths). A broken ring or a bad buffer is a refusal (the queue stops, or the request
/// fails); a finding is an exception, or a segment outside the guest memory image.
/// </summary>
internal sealed class VhostRingTarget
{
    public const int HeaderBytes = 4;
    public const int MemoryBytes = 64 * 1024;
    private const ulong UserAddress = 0x7f00_0000_0000; // the front-end's mapping: vring addresses are given in it

    private readonly BlkDeviceContext _ctx = new(new MemoryBlockDevice(1 << 20, 512), new VhostUserBlkOptions(), new FindingLogger());
    private readonly VirtioBlkHandler _handler;
    private readonly BlkRequest[] _requests = new BlkRequest[256];

    public VhostRingTarget()
    {
        _handler = new VirtioBlkHandler(new VirtQueue(0, _ctx, new DrainDeadline()), _ctx);
        for (int i = 0; i < _requests.Length; i++) _requests[i] = new BlkRequest(_handler, (ushort)i);
    }

    public void Run(ReadOnlySpan<byte> input)
    {
        if (input.Length < HeaderBytes) return;
        int size = 1 << (input[0] % 9);
        bool indirect = (input[1] & 1) != 0;
        ushort lastAvail = BinaryPrimitives.ReadUInt16LittleEndian(input[2..]);
        var image = input[HeaderBytes..];
        image = image[..Math.Min(image.Length, MemoryBytes)];

        Span<byte> table = stackalloc byte[8 + 32];
        table.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(table, 1);
        BinaryPrimitives.WriteUInt64LittleEndian(table[16..], MemoryBytes);
        BinaryPrimitives.WriteUInt64LittleEndian(table[24..], UserAddress);
        int fd = Libc.MemoryFile(image, MemoryBytes);
        using var memory = GuestMemory.Map(table, [fd], out string? error) ?? throw new InvalidOperationException($"memory table refused: {error}");

        ulong desc = 0, avail = SplitRing.DescBytes(size), used = (avail + SplitRing.AvailBytes(size) + 3) & ~3UL;
        var config = new VirtqConfig
        {
            Size = size, IndirectDesc = indirect, AddressesSet = true,
            DescUserAddress = UserAddress + desc, AvailUserAddress = UserAddress + avail, UsedUserAddress = UserAddress + used,
        };
        if (!SplitRing.TryMap(memory, config, out var ring, out error)) throw new InvalidOperationException($"ring refused: {error}");
        Serve(ring, memory, indirect, lastAvail);
    }

    /// <summary>The checks of VirtQueue.ProcessAvailable and Handle, in their order; returns at the first that breaks the ring.</summary>
    private void Serve(in SplitRing ring, GuestMemory memory, bool indirect, ushort lastAvail)
    {
        ushort availIdx = ring.AvailIdx;
        if ((ushort)(availIdx - lastAvail) > ring.Size) return;
        for (; lastAvail != availIdx; lastAvail++)
        {
            ushort head = ring.AvailRing(lastAvail);
            // A memory device completes a request before the next head is taken, so a head may come back at once.
            if (head >= ring.Size) return;
            var r = _requests[head];
            r.Reset();
            string? structural = DescriptorChain.Walk(ring, memory, indirect, _ctx.MaxTransferBytes, r, out _) ?? VirtioBlkHandler.LocateStatus(r);
            if (structural != null) return;
            CheckInside(r.Readable.AsSpan(0, r.ReadableCount), memory);
            CheckInside(r.Writable.AsSpan(0, r.WritableCount), memory);
        }
    }

    /// <summary>Every translated segment must lie inside the one region (a zero pointer marks a refused buffer).</summary>
    private static void CheckInside(ReadOnlySpan<Segment> segments, GuestMemory memory)
    {
        nint start = memory.Regions[0].Host;
        foreach (var s in segments)
        {
            if (s.Pointer == 0) continue;
            if (s.Length < 0 || s.Pointer < start || s.Pointer + s.Length > start + MemoryBytes)
                throw new InvalidOperationException($"segment 0x{s.Pointer:x}+{s.Length} lies outside guest memory 0x{start:x}+{MemoryBytes}");
        }
    }
}
