using Xunit.Abstractions;
using System.Buffers.Binary;
using EdgeBlock.Storage;

namespace EdgeBlock.Transports.VhostUser.Tests;

public sealed class IoTests
{
    [Fact]
    public async Task Negotiation_OffersTheBlockFeaturesAndConfig()
    {
        await using var h = new Harness();
        using var c = new RawVhostClient(h.SocketPath);
        ulong features = c.GetU64(VhostUserRequest.GetFeatures);
        foreach (int bit in new[] { Virtio.FVersion1, VhostUser.FProtocolFeatures, Virtio.BlkFSegMax, Virtio.BlkFBlkSize, Virtio.BlkFFlush,
                     Virtio.BlkFMq, Virtio.BlkFDiscard, Virtio.BlkFWriteZeroes, Virtio.FRingIndirectDesc, Virtio.FRingEventIdx })
        {
            Assert.True((features & 1UL << bit) != 0, $"feature bit {bit} missing");
        }
        Assert.Equal(0UL, features & 1UL << Virtio.BlkFRo);
        ulong protocol = c.GetU64(VhostUserRequest.GetProtocolFeatures);
        Assert.Equal(1UL << VhostUser.ProtocolFMq | 1UL << VhostUser.ProtocolFReplyAck | 1UL << VhostUser.ProtocolFConfig | 1UL << VhostUser.ProtocolFInflightShmfd, protocol);
        c.SetU64(VhostUserRequest.SetProtocolFeatures, protocol);
        Assert.Equal(4UL, c.GetU64(VhostUserRequest.GetQueueNum));

        byte[] request = new byte[12 + 60];
        BinaryPrimitives.WriteUInt32LittleEndian(request.AsSpan(4), 60);
        c.Send(VhostUserRequest.GetConfig, request);
        byte[] config = c.ReadReply(VhostUserRequest.GetConfig)!;
        Assert.Equal(72, config.Length);
        ReadOnlySpan<byte> cfg = config.AsSpan(12);
        Assert.Equal((ulong)(Harness.DeviceBytes / 512), BinaryPrimitives.ReadUInt64LittleEndian(cfg));
        Assert.Equal(126u, BinaryPrimitives.ReadUInt32LittleEndian(cfg[12..]));      // seg_max
        Assert.Equal(512u, BinaryPrimitives.ReadUInt32LittleEndian(cfg[20..]));      // blk_size
        Assert.Equal((ushort)4, BinaryPrimitives.ReadUInt16LittleEndian(cfg[34..])); // num_queues
        Assert.True(BinaryPrimitives.ReadUInt32LittleEndian(cfg[36..]) > 0);         // max_discard_sectors
        Assert.Equal(32u, BinaryPrimitives.ReadUInt32LittleEndian(cfg[40..]));       // max_discard_seg
        Assert.True(BinaryPrimitives.ReadUInt32LittleEndian(cfg[48..]) > 0);         // max_write_zeroes_sectors
        Assert.Equal(1, cfg[56]);                                                     // write_zeroes_may_unmap

        // An out-of-range config read answers with an empty payload (the protocol's error).
        BinaryPrimitives.WriteUInt32LittleEndian(request, 250);
        c.Send(VhostUserRequest.GetConfig, request);
        Assert.Empty(c.ReadReply(VhostUserRequest.GetConfig)!);
    }

    [Fact]
    public async Task WriteThenRead_RoundTripsThroughTheDevice()
    {
        await using var h = new Harness();
        using var c = h.Connect();
        ulong data = RawVhostClient.DataGpa(0);
        Blk.Fill(c, data, 8192, seed: 1);
        byte[] written = Blk.Bytes(c, data, 8192).ToArray();
        Assert.Equal((Virtio.BlkSOk, 1u), Blk.Write(c, 0, sector: 100, data, 8192));

        byte[] onDevice = new byte[8192];
        Assert.Equal(BlockStatus.Success, await h.Device.ReadAsync(100, onDevice));
        Assert.Equal(written, onDevice);

        ulong back = data + 65536;
        Assert.Equal((Virtio.BlkSOk, 8193u), Blk.Read(c, 0, sector: 100, back, 8192));
        Assert.Equal(written, Blk.Bytes(c, back, 8192).ToArray());
    }

    [Fact]
    public async Task ScatterGather_WithAnyFraming_Works()
    {
        await using var h = new Harness();
        using var c = h.Connect();
        ulong data = RawVhostClient.DataGpa(1);
        Blk.Fill(c, data, 3 * 4096, seed: 2);
        byte[] expected = Blk.Bytes(c, data, 3 * 4096).ToArray();

        // OUT in three pieces of odd sizes (1536 + 4096 + 6656), on queue 1.
        ushort head = c.AddChain(1,
            new(Blk.Header(c, 1, 0, Virtio.BlkTOut, 8), 16, false),
            new(data, 1536, false), new(data + 1536, 4096, false), new(data + 5632, 6656, false),
            new(Blk.Status(c, 1, 0), 1, true));
        Assert.Equal(Virtio.BlkSOk, Blk.Run(c, 1, head).Status);

        // IN with the header and data of the OUT in a single readable buffer is the same write.
        ulong combined = RawVhostClient.ScratchGpa(1) + 0x1000;
        Blk.Header(c, 1, 1, Virtio.BlkTOut, 200);
        Blk.Bytes(c, RawVhostClient.ScratchGpa(1) + 64, 16).CopyTo(Blk.Bytes(c, combined, 16));
        Blk.Bytes(c, data, 4096).CopyTo(Blk.Bytes(c, combined + 16, 4096));
        head = c.AddChain(1, new(combined, 16 + 4096, false), new(Blk.Status(c, 1, 0), 1, true));
        Assert.Equal(Virtio.BlkSOk, Blk.Run(c, 1, head).Status);
        byte[] sector200 = new byte[4096];
        await h.Device.ReadAsync(200, sector200);
        Assert.Equal(expected.AsSpan(0, 4096).ToArray(), sector200);

        // IN scattered into two pieces, the second one also holding the status byte.
        ulong back = data + 0x40000;
        Blk.Bytes(c, back, 3 * 4096 + 1).Fill(0xee);
        head = c.AddChain(1,
            new(Blk.Header(c, 1, 0, Virtio.BlkTIn, 8), 16, false),
            new(back, 512, true), new(back + 512, 3 * 4096 - 512 + 1, true));
        ushort target = (ushort)(c.UsedIdx(1) + 1);
        c.Publish(1, head);
        c.Kick(1);
        Assert.True(c.WaitUsed(1, target));
        Assert.Equal((uint)(3 * 4096 + 1), c.UsedElement(1, target - 1).Len);
        Assert.Equal(Virtio.BlkSOk, Blk.Bytes(c, back + 3 * 4096, 1)[0]);
        Assert.Equal(expected, Blk.Bytes(c, back, 3 * 4096).ToArray());
    }

    [Fact]
    public async Task ScatteredTransfer_LargerThanThePoolsLargestBuffer_MovesInPiecesThroughOneBounceBuffer()
    {
        // Bounce buffers come from the memory budget's pool, at most its largest buffer (64 KiB here) per request.
        using var pool = new DataBufferPool(128 * 1024, maxBufferBytes: 64 * 1024);
        await using var h = new Harness(options: new VhostUserBlkOptions { MaxQueues = 4, Buffers = pool });
        using var c = h.Connect();
        const int length = 3 * 65536;
        ulong data = RawVhostClient.DataGpa(0);
        Blk.Fill(c, data, length, seed: 7);
        byte[] written = Blk.Bytes(c, data, length).ToArray();

        // OUT spread over two guest buffers: not contiguous, so it needs the bounce buffer.
        ushort head = c.AddChain(0,
            new(Blk.Header(c, 0, 0, Virtio.BlkTOut, 16), 16, false),
            new(data, 4096, false), new(data + 4096, length - 4096, false),
            new(Blk.Status(c, 0, 0), 1, true));
        Assert.Equal(Virtio.BlkSOk, Blk.Run(c, 0, head).Status);
        byte[] onDevice = new byte[length];
        Assert.Equal(BlockStatus.Success, await h.Device.ReadAsync(16 * 512 / h.Device.BlockSize, onDevice));
        Assert.Equal(written, onDevice);

        ulong back = data + 0x80000;
        head = c.AddChain(0,
            new(Blk.Header(c, 0, 0, Virtio.BlkTIn, 16), 16, false),
            new(back, 512, true), new(back + 512, length - 512 + 1, true));
        Assert.Equal((Virtio.BlkSOk, (uint)length + 1), Blk.Run(c, 0, head));
        Assert.Equal(written, Blk.Bytes(c, back, length).ToArray());

        Assert.Equal(64 * 1024, pool.PeakInUseBytes);
        Assert.Equal(0, pool.InUseBytes);
    }

    [Fact]
    public async Task IndirectDescriptors_AreFollowed()
    {
        await using var h = new Harness();
        using var c = h.Connect();
        ulong data = RawVhostClient.DataGpa(0);
        Blk.Fill(c, data, 4096, seed: 3);
        ulong table = RawVhostClient.ScratchGpa(0) + 0x2000;
        ushort head = c.AddIndirectChain(0, table,
            new(Blk.Header(c, 0, 0, Virtio.BlkTOut, 64), 16, false),
            new(data, 2048, false), new(data + 2048, 2048, false),
            new(Blk.Status(c, 0, 0), 1, true));
        Assert.Equal(Virtio.BlkSOk, Blk.Run(c, 0, head).Status);
        ulong back = data + 0x10000;
        head = c.AddIndirectChain(0, table,
            new(Blk.Header(c, 0, 0, Virtio.BlkTIn, 64), 16, false),
            new(back, 4096, true),
            new(Blk.Status(c, 0, 0), 1, true));
        Assert.Equal((Virtio.BlkSOk, 4097u), Blk.Run(c, 0, head));
        Assert.Equal(Blk.Bytes(c, data, 4096).ToArray(), Blk.Bytes(c, back, 4096).ToArray());
    }

    [Fact]
    public async Task Statistics_CountRequestsFailuresAndBytes_AcrossSessions()
    {
        await using var h = new Harness();
        ulong data = RawVhostClient.DataGpa(0);
        using (var c = h.Connect())
        {
            Assert.Equal(Virtio.BlkSOk, Blk.Write(c, 0, sector: 8, data, 8192).Item1);
            Assert.Equal(Virtio.BlkSOk, Blk.Read(c, 1, sector: 8, RawVhostClient.DataGpa(1), 4096).Item1);
            ulong beyond = (ulong)(Harness.DeviceBytes / 512);
            Assert.Equal(Virtio.BlkSIoErr, Blk.Read(c, 0, sector: beyond, data, 4096).Item1);
            Assert.Equal(new VhostUserBlkStatistics(3, 1, 4096, 8192), h.Server.Statistics);
        }
        for (int i = 0; i < 200 && h.Server.IsConnected; i++) await Task.Delay(10);
        using (var c = h.Connect())
        {
            Assert.Equal(Virtio.BlkSOk, Blk.Write(c, 0, sector: 0, data, 512).Item1);
            Assert.Equal(new VhostUserBlkStatistics(4, 1, 4096, 8704), h.Server.Statistics);
        }
    }

    [Fact]
    public async Task FlushGetIdDiscardWriteZeroes_Work_AndUnknownTypesAreUnsupported()
    {
        await using var h = new Harness();
        using var c = h.Connect();
        ushort head = c.AddChain(0, new(Blk.Header(c, 0, 0, Virtio.BlkTFlush, 0), 16, false), new(Blk.Status(c, 0, 0), 1, true));
        Assert.Equal((Virtio.BlkSOk, 1u), Blk.Run(c, 0, head));

        ulong id = RawVhostClient.DataGpa(0);
        Blk.Bytes(c, id, 20).Fill(0xff);
        head = c.AddChain(0, new(Blk.Header(c, 0, 0, Virtio.BlkTGetId, 0), 16, false), new(id, 20, true), new(Blk.Status(c, 0, 0), 1, true));
        Assert.Equal((Virtio.BlkSOk, 21u), Blk.Run(c, 0, head));
        Assert.Equal("edgeblock\0\0\0\0\0\0\0\0\0\0\0"u8.ToArray(), Blk.Bytes(c, id, 20).ToArray());

        // Data, then DISCARD of two ranges and WRITE_ZEROES of another: all read back as zeroes.
        ulong data = RawVhostClient.DataGpa(0) + 4096;
        Blk.Fill(c, data, 65536, seed: 4);
        Assert.Equal(Virtio.BlkSOk, Blk.Write(c, 0, 0, data, 65536).Item1);
        ulong ranges = RawVhostClient.DataGpa(0) + 0x20000;
        Blk.DiscardRange(0, 16, 0).CopyTo(Blk.Bytes(c, ranges, 16));
        Blk.DiscardRange(32, 16, 0).CopyTo(Blk.Bytes(c, ranges + 16, 16));
        head = c.AddChain(0, new(Blk.Header(c, 0, 0, Virtio.BlkTDiscard, 0), 16, false), new(ranges, 32, false), new(Blk.Status(c, 0, 0), 1, true));
        Assert.Equal(Virtio.BlkSOk, Blk.Run(c, 0, head).Status);
        Blk.DiscardRange(64, 64, Virtio.WriteZeroesFlagUnmap).CopyTo(Blk.Bytes(c, ranges, 16));
        head = c.AddChain(0, new(Blk.Header(c, 0, 0, Virtio.BlkTWriteZeroes, 0), 16, false), new(ranges, 16, false), new(Blk.Status(c, 0, 0), 1, true));
        Assert.Equal(Virtio.BlkSOk, Blk.Run(c, 0, head).Status);
        byte[] device = new byte[65536];
        await h.Device.ReadAsync(0, device);
        Assert.True(device.AsSpan(0, 8192).IndexOfAnyExcept((byte)0) < 0);
        Assert.Equal(Blk.Bytes(c, data + 8192, 8192).ToArray(), device.AsSpan(8192, 8192).ToArray());
        Assert.True(device.AsSpan(16384, 8192).IndexOfAnyExcept((byte)0) < 0);
        Assert.True(device.AsSpan(32768, 32768).IndexOfAnyExcept((byte)0) < 0);

        // DISCARD with the unmap flag is not allowed; an unknown type is unsupported.
        Blk.DiscardRange(0, 8, 1).CopyTo(Blk.Bytes(c, ranges, 16));
        head = c.AddChain(0, new(Blk.Header(c, 0, 0, Virtio.BlkTDiscard, 0), 16, false), new(ranges, 16, false), new(Blk.Status(c, 0, 0), 1, true));
        Assert.Equal(Virtio.BlkSUnsupp, Blk.Run(c, 0, head).Status);
        head = c.AddChain(0, new(Blk.Header(c, 0, 0, 99, 0), 16, false), new(Blk.Status(c, 0, 0), 1, true));
        Assert.Equal(Virtio.BlkSUnsupp, Blk.Run(c, 0, head).Status);
    }

    [Fact]
    public async Task Queues_RunIndependentlyAndInParallel()
    {
        await using var h = new Harness();
        using var c = h.Connect(queues: 4);
        // 16 requests in flight on each of four queues, one kick per queue.
        for (int q = 0; q < 4; q++)
        {
            var heads = new ushort[16];
            for (int i = 0; i < 16; i++)
            {
                ulong data = RawVhostClient.DataGpa(q) + (ulong)(i * 4096);
                Blk.Fill(c, data, 4096, seed: q * 100 + i);
                heads[i] = c.AddChain(q,
                    new(Blk.Header(c, q, i, Virtio.BlkTOut, (ulong)((q * 16 + i) * 8)), 16, false),
                    new(data, 4096, false),
                    new(Blk.Status(c, q, i), 1, true));
            }
            c.Publish(q, heads);
        }
        for (int q = 0; q < 4; q++)
        {
            c.Kick(q);
        }
        for (int q = 0; q < 4; q++)
        {
            Assert.True(c.WaitUsed(q, 16));
            for (int i = 0; i < 16; i++)
            {
                Assert.Equal(Virtio.BlkSOk, Blk.StatusOf(c, q, i));
            }
        }
        byte[] block = new byte[4096];
        for (int q = 0; q < 4; q++)
        {
            for (int i = 0; i < 16; i++)
            {
                await h.Device.ReadAsync((q * 16 + i) * 8, block);
                Assert.Equal(Blk.Bytes(c, RawVhostClient.DataGpa(q) + (ulong)(i * 4096), 4096).ToArray(), block);
            }
        }
    }

    [Fact]
    public async Task EventIndex_SuppressesInterruptsUntilUsedEvent_AndAsksForTheNextKick()
    {
        await using var h = new Harness();
        using var c = h.Connect(queues: 1, eventIdx: true);
        ulong data = RawVhostClient.DataGpa(0);
        ushort Chain(int slot) => c.AddChain(0,
            new(Blk.Header(c, 0, slot, Virtio.BlkTOut, (ulong)slot * 8), 16, false),
            new(data + (ulong)(slot * 4096), 4096, false),
            new(Blk.Status(c, 0, slot), 1, true));

        // used_event = 0: the first completion (used index 0 -> 1) must interrupt.
        c.SetUsedEvent(0, 0);
        c.Publish(0, Chain(0));
        c.Kick(0);
        Assert.True(c.CallSignalled(0, 5000));
        Assert.Equal(1, c.UsedIdx(0));
        // The device asked to be kicked for the next entry.
        Assert.True(SpinWait.SpinUntil(() => c.AvailEvent(0) == 1, 2000));

        // used_event = 5: four completions (1 -> 5) pass quietly, the fifth (5 -> 6) interrupts.
        c.SetUsedEvent(0, 5);
        for (int i = 1; i <= 4; i++)
        {
            c.Publish(0, Chain(i));
            c.Kick(0);
            Assert.True(SpinWait.SpinUntil(() => c.UsedIdx(0) == i + 1, 5000));
        }
        Assert.False(c.CallSignalled(0, 100));
        c.Publish(0, Chain(5));
        c.Kick(0);
        Assert.True(c.CallSignalled(0, 5000));
        Assert.Equal(6, c.UsedIdx(0));
        for (int i = 0; i <= 5; i++)
        {
            Assert.Equal(Virtio.BlkSOk, Blk.StatusOf(c, 0, i));
        }
    }

    [Fact]
    public async Task A_4k_block_device_refuses_unaligned_requests()
    {
        await using var h = new Harness(new MemoryBlockDevice(Harness.DeviceBytes, blockSize: 4096));
        using var c = h.Connect();
        byte[] request = new byte[12 + 24];
        BinaryPrimitives.WriteUInt32LittleEndian(request.AsSpan(4), 24);
        c.Send(VhostUserRequest.GetConfig, request);
        Assert.Equal(4096u, BinaryPrimitives.ReadUInt32LittleEndian(c.ReadReply(VhostUserRequest.GetConfig)!.AsSpan(12 + 20)));
        ulong data = RawVhostClient.DataGpa(0);
        Blk.Fill(c, data, 8192, seed: 6);
        Assert.Equal(Virtio.BlkSOk, Blk.Write(c, 0, 16, data, 8192).Item1);        // sector 16 = block 2
        Assert.Equal(Virtio.BlkSIoErr, Blk.Write(c, 0, 17, data, 4096).Item1);      // not on a block boundary
        Assert.Equal(Virtio.BlkSIoErr, Blk.Write(c, 0, 16, data, 512).Item1);       // not a whole block
        byte[] device = new byte[8192];
        await h.Device.ReadAsync(2, device);
        Assert.Equal(Blk.Bytes(c, data, 8192).ToArray(), device);
    }

    [Fact]
    public async Task ReadOnlyExport_RefusesWrites()
    {
        await using var h = new Harness(options: new VhostUserBlkOptions { ReadOnly = true });
        using var c = h.Connect();
        Assert.NotEqual(0UL, c.GetU64(VhostUserRequest.GetFeatures) & 1UL << Virtio.BlkFRo);
        ulong data = RawVhostClient.DataGpa(0);
        Assert.Equal(Virtio.BlkSIoErr, Blk.Write(c, 0, 0, data, 4096).Item1);
        Assert.Equal(Virtio.BlkSOk, Blk.Read(c, 0, 0, data, 4096).Item1);
    }

    [Fact]
    public async Task NewMemoryTable_WhileRequestsAreInFlight_IsTakenAfterTheyDrain()
    {
        var slow = new DelayDevice(new MemoryBlockDevice(Harness.DeviceBytes)) { Delay = TimeSpan.FromMilliseconds(200) };
        await using var h = new Harness(slow);
        using var c = h.Connect();
        ulong data = RawVhostClient.DataGpa(0);
        Blk.Fill(c, data, 4096, seed: 14);
        ushort head = c.AddChain(0, new(Blk.Header(c, 0, 0, Virtio.BlkTOut, 0), 16, false), new(data, 4096, false), new(Blk.Status(c, 0, 0), 1, true));
        c.Publish(0, head);
        c.Kick(0);
        Thread.Sleep(50);
        // QEMU sends a new table when guest memory changes; the write in flight completes first.
        Assert.Equal(0UL, c.SetMemTable());
        Assert.True(c.WaitUsed(0, 1));
        Assert.Equal(Virtio.BlkSOk, Blk.StatusOf(c, 0, 0));
        slow.Delay = TimeSpan.Zero;
        Assert.Equal(Virtio.BlkSOk, Blk.Read(c, 0, 0, data + 8192, 4096).Item1);
        Assert.Equal(Blk.Bytes(c, data, 4096).ToArray(), Blk.Bytes(c, data + 8192, 4096).ToArray());
    }

    /// <summary>Delays writes.</summary>
    private sealed class DelayDevice(IBlockDevice inner) : IBlockDevice
    {
        public TimeSpan Delay { get; set; }
        public int BlockSize => inner.BlockSize;
        public long BlockCount => inner.BlockCount;
        public bool SupportsDeallocate => inner.SupportsDeallocate;
        public ValueTask<BlockStatus> ReadAsync(long lba, Memory<byte> buffer) => inner.ReadAsync(lba, buffer);

        public async ValueTask<BlockStatus> WriteAsync(long lba, ReadOnlyMemory<byte> data, bool fua)
        {
            if (Delay > TimeSpan.Zero)
            {
                await Task.Delay(Delay);
            }
            return await inner.WriteAsync(lba, data, fua);
        }

        public ValueTask<BlockStatus> FlushAsync() => inner.FlushAsync();
        public ValueTask<BlockStatus> WriteZeroesAsync(long lba, long blockCount, bool deallocate) => inner.WriteZeroesAsync(lba, blockCount, deallocate);
        public ValueTask<BlockStatus> DeallocateAsync(long lba, long blockCount) => inner.DeallocateAsync(lba, blockCount);
        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }

    [Fact]
    public async Task FileDevice_ServesDirectIoFromGuestMemory()
    {
        string dir = Directory.CreateTempSubdirectory("ebvhf").FullName;
        try
        {
            FileBlockDevice file = FileBlockDevice.Open(Path.Combine(dir, "disk.img"), 16 << 20);
            await using var h = new Harness(file);
            using var c = h.Connect();
            ulong data = RawVhostClient.DataGpa(0);
            Blk.Fill(c, data, 131072, seed: 5);
            Assert.Equal(Virtio.BlkSOk, Blk.Write(c, 0, 2048, data, 131072).Item1);
            ushort head = c.AddChain(0, new(Blk.Header(c, 0, 0, Virtio.BlkTFlush, 0), 16, false), new(Blk.Status(c, 0, 0), 1, true));
            Assert.Equal(Virtio.BlkSOk, Blk.Run(c, 0, head).Status);
            ulong back = data + 0x40000;
            Assert.Equal(Virtio.BlkSOk, Blk.Read(c, 0, 2048, back, 131072).Item1);
            Assert.Equal(Blk.Bytes(c, data, 131072).ToArray(), Blk.Bytes(c, back, 131072).ToArray());
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}

/// <summary>Allocation is measured process-wide, so nothing may run beside this test.</summary>
[CollectionDefinition(nameof(AllocationTests), DisableParallelization = true)]
public sealed class AllocationCollection;

[Collection(nameof(AllocationTests))]
public sealed class AllocationTests(ITestOutputHelper output)
{
    [Fact]
    public async Task SteadyStateIo_DoesNotAllocatePerRequest()
    {
        await using var h = new Harness();
        using var c = h.Connect(queues: 1);
        ulong data = RawVhostClient.DataGpa(0);
        ulong header = Blk.Header(c, 0, 0, Virtio.BlkTOut, 0);
        ulong status = Blk.Status(c, 0, 0);
        ushort head = c.AddChain(0, new(header, 16, false), new(data, 4096, false), new(status, 1, true));
        void RunMany(int n)
        {
            for (int i = 0; i < n; i++)
            {
                ushort target = (ushort)(c.UsedIdx(0) + 1);
                c.Publish(0, head);
                c.Kick(0);
                if (!c.WaitUsed(0, target))
                {
                    throw new TimeoutException();
                }
            }
        }
        RunMany(2000); // warm up (tiered JIT)
        VirtQueue q0 = h.Server.CurrentConnection!.Queues[0]!;
        long workerBefore = q0.WorkerAllocatedBytes;
        long before = GC.GetTotalAllocatedBytes(precise: true);
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        RunMany(5000);
        TimeSpan elapsed = System.Diagnostics.Stopwatch.GetElapsedTime(start);
        long allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        RunMany(1); // the worker updates its figure when it wakes
        long worker = q0.WorkerAllocatedBytes - workerBefore;
        output.WriteLine($"5000 x 4 KiB writes at queue depth 1 (memory device): {elapsed.TotalMicroseconds / 5000:F1} us per request round trip; " +
            $"{worker} bytes allocated by the queue's thread, {allocated} in the whole process");
        // The queue thread does all the work here (the memory device completes synchronously).
        Assert.True(worker < 1024, $"the queue thread allocated {worker} bytes for 5000 requests");
        // The test client allocates nothing per request either; what is left is background noise.
        Assert.True(allocated < 5000 * 64, $"{allocated} bytes allocated for 5000 requests");
    }
}
