using System.Buffers.Binary;
using EdgeBlock.Storage;

namespace EdgeBlock.Transports.VhostUser.Tests;

/// <summary>
/// A broken or hostile front-end: bad descriptors fail the request (IOERR) or stop only that
/// queue with a logged reason; bad messages close only that connection. Each test then shows the
/// back-end still serving.
/// </summary>
public sealed class FaultTests
{
    private static void AssertStillServes(RawVhostClient c, int queue, int seed)
    {
        ulong data = RawVhostClient.DataGpa(queue) + 0x80000;
        Blk.Fill(c, data, 4096, seed);
        Assert.Equal(Virtio.BlkSOk, Blk.Write(c, queue, 1000, data, 4096).Item1);
        Assert.Equal(Virtio.BlkSOk, Blk.Read(c, queue, 1000, data + 4096, 4096).Item1);
        Assert.Equal(Blk.Bytes(c, data, 4096).ToArray(), Blk.Bytes(c, data + 4096, 4096).ToArray());
    }

    public static TheoryData<string> IoErrCases => new()
    {
        "data outside guest memory", "data straddling a region end", "beyond capacity", "length not a multiple of 512",
        "readable after writable", "short header", "read into a read-only buffer", "huge length",
        "write-zeroes range beyond capacity", "discard with a partial range entry",
    };

    [Theory]
    [MemberData(nameof(IoErrCases))]
    public async Task BadRequests_FailWithIoerr_AndTheQueueKeepsServing(string name)
    {
        await using var h = new Harness();
        using var c = h.Connect();
        ulong hdrIn = Blk.Header(c, 0, 0, Virtio.BlkTIn, 0);
        ulong status = Blk.Status(c, 0, 0);
        ulong data = RawVhostClient.DataGpa(0);
        RawVhostClient.Buf[] chain = name switch
        {
            "data outside guest memory" => [new(hdrIn, 16, false), new(0x5_0000_0000, 4096, true), new(status, 1, true)],
            "data straddling a region end" => [new(hdrIn, 16, false), new(RawVhostClient.Region0Gpa + RawVhostClient.RegionSize - 2048, 4096, true), new(status, 1, true)],
            "beyond capacity" => [new(Blk.Header(c, 0, 0, Virtio.BlkTIn, Harness.DeviceBytes / 512 - 4), 16, false), new(data, 4096, true), new(status, 1, true)],
            "length not a multiple of 512" => [new(hdrIn, 16, false), new(data, 1000, true), new(status, 1, true)],
            "readable after writable" => [new(hdrIn, 16, false), new(data, 4096, true), new(data + 8192, 512, false), new(status, 1, true)],
            "short header" => [new(hdrIn, 8, false), new(data, 4096, true), new(status, 1, true)],
            "read into a read-only buffer" => [new(hdrIn, 16, false), new(data, 4096, false), new(status, 1, true)],
            "huge length" => [new(Blk.Header(c, 0, 0, Virtio.BlkTOut, 0), 16, false), new(data, 0xffff_0000, false), new(status, 1, true)],
            "write-zeroes range beyond capacity" => [new(Blk.Header(c, 0, 0, Virtio.BlkTWriteZeroes, 0), 16, false), new(data, 16, false), new(status, 1, true)],
            "discard with a partial range entry" => [new(Blk.Header(c, 0, 0, Virtio.BlkTDiscard, 0), 16, false), new(data, 12, false), new(status, 1, true)],
            _ => throw new ArgumentException(name),
        };
        if (name == "write-zeroes range beyond capacity")
        {
            Blk.DiscardRange(Harness.DeviceBytes / 512 - 8, 64, 0).CopyTo(Blk.Bytes(c, data, 16));
        }
        ushort head = c.AddChain(0, chain);
        Assert.Equal(Virtio.BlkSIoErr, Blk.Run(c, 0, head).Status);
        Assert.False(h.Server.CurrentConnection!.Queues[0]!.Broken);
        Assert.True(h.Logger.Contains("failed with IOERR") || name == "write-zeroes range beyond capacity", h.Logger.ToString());
        AssertStillServes(c, 0, seed: 7);
    }

    public static TheoryData<string> BrokenRingCases => new()
    {
        "loop", "next out of range", "head out of range", "no status byte", "indirect table outside memory",
        "nested indirect", "indirect with next", "avail index too far ahead", "status outside memory",
    };

    [Theory]
    [MemberData(nameof(BrokenRingCases))]
    public async Task BrokenRing_StopsOnlyThatQueue_UntilItIsRestarted(string name)
    {
        await using var h = new Harness();
        using var c = h.Connect();
        ulong hdr = Blk.Header(c, 0, 0, Virtio.BlkTIn, 0);
        ulong status = Blk.Status(c, 0, 0);
        ulong data = RawVhostClient.DataGpa(0);
        ulong desc = RawVhostClient.DescGpa(0);
        ushort head = 0;
        switch (name)
        {
            case "loop":
                c.WriteDesc(desc, 0, hdr, 16, Virtio.DescFNext, 1);
                c.WriteDesc(desc, 1, data, 4096, Virtio.DescFNext | Virtio.DescFWrite, 2);
                c.WriteDesc(desc, 2, status, 1, Virtio.DescFNext | Virtio.DescFWrite, 1);
                c.Publish(0, (ushort)0);
                break;
            case "next out of range":
                c.WriteDesc(desc, 0, hdr, 16, Virtio.DescFNext, 500);
                c.Publish(0, (ushort)0);
                break;
            case "head out of range":
                c.Publish(0, (ushort)RawVhostClient.QueueSize);
                break;
            case "no status byte":
                c.WriteDesc(desc, 0, hdr, 16, Virtio.DescFNext, 1);
                c.WriteDesc(desc, 1, data, 4096, 0, 0);
                c.Publish(0, (ushort)0);
                break;
            case "status outside memory":
                c.WriteDesc(desc, 0, hdr, 16, Virtio.DescFNext, 1);
                c.WriteDesc(desc, 1, 0x9_0000_0000, 1, Virtio.DescFWrite, 0);
                c.Publish(0, (ushort)0);
                break;
            case "indirect table outside memory":
                c.WriteDesc(desc, 0, 0x9_0000_0000, 64, Virtio.DescFIndirect, 0);
                c.Publish(0, (ushort)0);
                break;
            case "nested indirect":
            {
                ulong table = RawVhostClient.ScratchGpa(0) + 0x2000;
                c.WriteDesc(table, 0, table, 32, Virtio.DescFIndirect, 0);
                c.WriteDesc(desc, 0, table, 32, Virtio.DescFIndirect, 0);
                c.Publish(0, (ushort)0);
                break;
            }
            case "indirect with next":
                c.WriteDesc(desc, 0, RawVhostClient.ScratchGpa(0) + 0x2000, 32, Virtio.DescFIndirect | Virtio.DescFNext, 1);
                c.Publish(0, (ushort)0);
                break;
            case "avail index too far ahead":
                c.SetAvailIdxRaw(0, 1000);
                break;
        }
        _ = head;
        c.Kick(0);
        Assert.True(c.ErrSignalled(0), "the error eventfd was not signalled");
        VirtQueue q0 = h.Server.CurrentConnection!.Queues[0]!;
        Assert.True(q0.Broken);
        Assert.True(h.Logger.Contains("the ring is broken"), h.Logger.ToString());

        // The other queue is unaffected...
        AssertStillServes(c, 1, seed: 8);
        // ...and queue 0 works again once the front-end restarts it (as QEMU does on a device reset).
        c.StopQueue(0);
        c.StartQueue(0);
        Assert.False(q0.Broken);
        AssertStillServes(c, 0, seed: 9);
    }

    [Fact]
    public async Task BadMessages_CloseOnlyThatConnection()
    {
        await using var h = new Harness();
        var attacks = new List<Action<RawVhostClient>>
        {
            c => c.Send(VhostUserRequest.GetFeatures, [], sizeOverride: 1 << 20),               // absurd payload size
            c => c.Send(VhostUserRequest.GetFeatures, [], flags: 2),                             // wrong version
            c => c.Send(VhostUserRequest.SetVringNum, RawVhostClient.State(200, 64)),            // queue index out of range
            c => c.Send(VhostUserRequest.SetFeatures, [1, 2, 3]),                                // short payload
            c => c.SendRaw([1, 0, 0]),                                                           // torn header, then EOF
            c => c.Send(VhostUserRequest.SetVringKick, RawVhostClient.U64(0)),                   // kick without its fd
            c => c.Send(VhostUserRequest.GetInflightFd, new byte[24]),                           // a reply we cannot give
        };
        foreach (Action<RawVhostClient> attack in attacks)
        {
            using var bad = new RawVhostClient(h.SocketPath);
            attack(bad);
            if (bad.IsClosedByPeer(2000) is false)
            {
                // The torn-header case needs us to hang up first.
                bad.Dispose();
            }
        }
        using var good = h.Connect();
        AssertStillServes(good, 0, seed: 10);
        Assert.True(h.Server.Connections >= attacks.Count + 1);
    }

    [Fact]
    public async Task SecondServer_OnALiveSocketIsRefused_AndAStaleSocketIsReplaced()
    {
        await using var h = new Harness();
        var second = new VhostUserBlkServer(h.SocketPath, new MemoryBlockDevice(1 << 20));
        IOException e = Assert.Throws<IOException>(second.Start);
        Assert.Contains("Another back-end", e.Message);
        await second.DisposeAsync(); // the refused server leaves the live one's socket alone
        using (var live = h.Connect()) Assert.NotEqual(0UL, live.GetU64(VhostUserRequest.GetFeatures));
        await h.Server.DisposeAsync();
        // The first server removed its socket; a leftover socket file (a crashed server's) is replaced.
        string stale = h.SocketPath + "2";
        var s = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        s.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(stale));
        s.Dispose();
        await using var third = new VhostUserBlkServer(stale, new MemoryBlockDevice(1 << 20));
        third.Start();
        using var c = new RawVhostClient(stale);
        Assert.NotEqual(0UL, c.GetU64(VhostUserRequest.GetFeatures));
    }

    [Fact]
    public async Task BadMemoryTablesAndRingAddresses_AreRefusedWithReplyAck()
    {
        await using var h = new Harness();
        using var c = new RawVhostClient(h.SocketPath);
        ulong features = c.GetU64(VhostUserRequest.GetFeatures);
        c.SetU64(VhostUserRequest.SetProtocolFeatures, c.GetU64(VhostUserRequest.GetProtocolFeatures));
        Assert.Equal(0UL, c.WithAck(VhostUserRequest.SetFeatures, RawVhostClient.U64(features)));
        // Features that were not offered.
        Assert.Equal(1UL, c.WithAck(VhostUserRequest.SetFeatures, RawVhostClient.U64(features | 1UL << 40)));
        // A region larger than its memfd (mapping it would SIGBUS on access).
        Assert.Equal(1UL, c.SetMemTable(region1Size: 64 << 20));
        Assert.True(h.Logger.Contains("needs 0x"), h.Logger.ToString());
        Assert.False(h.Logger.Contains("not sealed"));
        // Region count and fd count disagree.
        Assert.Equal(1UL, c.WithAck(VhostUserRequest.SetMemTable, c.MemTablePayload(), []));
        // A good table (our memfd is not sealed: that is worth a warning), then ring addresses outside it.
        Assert.Equal(0UL, c.SetMemTable());
        Assert.True(h.Logger.Contains("not sealed against shrinking"), h.Logger.ToString());
        Assert.Equal(0UL, c.WithAck(VhostUserRequest.SetVringNum, RawVhostClient.State(0, 64)));
        Assert.Equal(1UL, c.WithAck(VhostUserRequest.SetVringNum, RawVhostClient.State(0, 100)));    // not a power of two
        byte[] addr = new byte[40];
        BinaryPrimitives.WriteUInt64LittleEndian(addr.AsSpan(8), 0x1234_0000_0000);
        BinaryPrimitives.WriteUInt64LittleEndian(addr.AsSpan(16), RawVhostClient.UserBase + RawVhostClient.UsedGpa(0));
        BinaryPrimitives.WriteUInt64LittleEndian(addr.AsSpan(24), RawVhostClient.UserBase + RawVhostClient.AvailGpa(0));
        Assert.Equal(1UL, c.WithAck(VhostUserRequest.SetVringAddr, addr));
        // The connection is still usable: finish the set-up properly and do I/O.
        c.StartQueue(0);
        c.StartQueue(1);
        AssertStillServes(c, 0, seed: 11);
    }

    [Fact]
    public async Task DisconnectMidIo_ThenReconnect_ServesAgainWithTheDataKept()
    {
        var slow = new SlowDevice(new MemoryBlockDevice(Harness.DeviceBytes));
        await using var h = new Harness(slow);
        using (var c = h.Connect())
        {
            ulong data = RawVhostClient.DataGpa(0);
            Blk.Fill(c, data, 4096, seed: 12);
            Assert.Equal(Virtio.BlkSOk, Blk.Write(c, 0, 4000, data, 4096).Item1);
            // Leave a request in the device and hang up.
            slow.Delay = TimeSpan.FromMilliseconds(300);
            ushort head = c.AddChain(0, new(Blk.Header(c, 0, 0, Virtio.BlkTIn, 4000), 16, false), new(data + 8192, 4096, true), new(Blk.Status(c, 0, 0), 1, true));
            c.Publish(0, head);
            c.Kick(0);
            Thread.Sleep(50);
        }
        slow.Delay = TimeSpan.Zero;
        using var again = h.Connect();
        Assert.True(SpinWait.SpinUntil(() => h.Server.Connections == 2, 5000));
        ulong back = RawVhostClient.DataGpa(1);
        Assert.Equal(Virtio.BlkSOk, Blk.Read(again, 1, 4000, back, 4096).Item1);
        var rng = new Random(12);
        byte[] expected = new byte[4096];
        rng.NextBytes(expected);
        Assert.Equal(expected, Blk.Bytes(again, back, 4096).ToArray());
        Assert.Contains("closed", h.Server.LastDisconnectReason);
    }

    [Fact]
    public async Task ThrowingDevice_FailsTheRequest_NotTheDaemon()
    {
        var device = new SlowDevice(new MemoryBlockDevice(Harness.DeviceBytes));
        await using var h = new Harness(device);
        using var c = h.Connect();
        ulong data = RawVhostClient.DataGpa(0);
        device.ThrowSync = true;
        Assert.Equal(Virtio.BlkSIoErr, Blk.Read(c, 0, 0, data, 4096).Item1);
        device.ThrowSync = false;
        device.ThrowAsync = true;
        Assert.Equal(Virtio.BlkSIoErr, Blk.Read(c, 0, 0, data, 4096).Item1);
        device.ThrowAsync = false;
        Assert.True(h.Logger.Contains("the block device threw"), h.Logger.ToString());
        AssertStillServes(c, 0, seed: 13);
    }

    /// <summary>Delays reads, so a request is still in the device when the front-end goes away.</summary>
    private sealed class SlowDevice(IBlockDevice inner) : IBlockDevice
    {
        public TimeSpan Delay { get; set; }
        public int BlockSize => inner.BlockSize;
        public long BlockCount => inner.BlockCount;
        public bool SupportsDeallocate => inner.SupportsDeallocate;

        public bool ThrowSync { get; set; }
        public bool ThrowAsync { get; set; }

        public ValueTask<BlockStatus> ReadAsync(long lba, Memory<byte> buffer) =>
            ThrowSync ? throw new InvalidOperationException("synchronous failure") : ReadCoreAsync(lba, buffer);

        private async ValueTask<BlockStatus> ReadCoreAsync(long lba, Memory<byte> buffer)
        {
            if (ThrowAsync)
            {
                await Task.Yield();
                throw new InvalidOperationException("asynchronous failure");
            }
            if (Delay > TimeSpan.Zero)
            {
                await Task.Delay(Delay);
            }
            return await inner.ReadAsync(lba, buffer);
        }

        public ValueTask<BlockStatus> WriteAsync(long lba, ReadOnlyMemory<byte> data, bool fua) => inner.WriteAsync(lba, data, fua);
        public ValueTask<BlockStatus> FlushAsync() => inner.FlushAsync();
        public ValueTask<BlockStatus> WriteZeroesAsync(long lba, long blockCount, bool deallocate) => inner.WriteZeroesAsync(lba, blockCount, deallocate);
        public ValueTask<BlockStatus> DeallocateAsync(long lba, long blockCount) => inner.DeallocateAsync(lba, blockCount);
        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
