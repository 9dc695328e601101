using System.Buffers.Binary;
using EdgeBlock.Interop;
using EdgeBlock.Storage;

namespace EdgeBlock.Transports.VhostUser.Tests;

/// <summary>
/// INFLIGHT_SHMFD: the area the back-end creates and the front-end keeps. A back-end that died
/// with requests in flight leaves them marked there; the next one resubmits them in order,
/// without a kick, and continues the available ring after them.
/// </summary>
public sealed class InflightTests
{
    [Fact]
    public async Task InflightArea_IsCreatedInitialized_AndTracksRequests()
    {
        await using var h = new Harness();
        using var c = new RawVhostClient(h.SocketPath);
        c.SetU64(VhostUserRequest.SetProtocolFeatures, c.GetU64(VhostUserRequest.GetProtocolFeatures));
        c.Send(VhostUserRequest.GetInflightFd, RawVhostClient.Inflight(0, 2, RawVhostClient.QueueSize));
        byte[] reply = c.ReadReplyWithFd(VhostUserRequest.GetInflightFd, out int fd)!;
        Assert.True(fd >= 0);
        ulong size = BinaryPrimitives.ReadUInt64LittleEndian(reply);
        long region = InflightTracking.QueueRegionSize(RawVhostClient.QueueSize);
        Assert.Equal((ulong)(2 * region), size);
        nint area = Native.Mmap(0, (nuint)size, Native.PROT_READ | Native.PROT_WRITE, Native.MAP_SHARED, fd, 0);
        try
        {
            Assert.Equal(InflightTracking.Version, Poke.U16(area + InflightTracking.VersionOffset));
            Assert.Equal((ushort)RawVhostClient.QueueSize, Poke.U16(area + (nint)region + InflightTracking.DescNumOffset));

            c.InflightFd = fd;
            c.InflightSize = size;
            c.Negotiate();
            ulong data = RawVhostClient.DataGpa(0);
            Assert.Equal(Virtio.BlkSOk, Blk.Write(c, 0, 0, data, 4096).Item1);
            // Completed: not in flight any more, and the area's used index follows the ring's.
            Assert.Equal(0, Poke.U8(area + InflightTracking.HeaderSize + InflightTracking.InflightOffset));
            Assert.Equal(c.UsedIdx(0), Poke.U16(area + InflightTracking.UsedIdxOffset));
        }
        finally
        {
            Native.Munmap(area, (nuint)size);
            Native.Close(fd);
        }
    }

    [Fact]
    public async Task DeadBackEnd_RequestsLeftInFlight_AreResubmittedInOrder()
    {
        await using var h = new Harness();
        // The front-end's own area, as QEMU keeps it: laid out like the back-end's.
        int fd = Poke.Memfd();
        long region = InflightTracking.QueueRegionSize(RawVhostClient.QueueSize);
        ulong size = (ulong)(2 * region);
        Assert.Equal(0, Native.Ftruncate(fd, (long)size));
        nint area = Native.Mmap(0, (nuint)size, Native.PROT_READ | Native.PROT_WRITE, Native.MAP_SHARED, fd, 0);
        try
        {
            using var c = new RawVhostClient(h.SocketPath);
            // Ring state a dead back-end left: two writes completed (used index 2), then three
            // writes taken but not completed (heads 12, 9, 15, taken in that order), and a
            // fourth (head 20) that completed but whose in-flight mark was not cleared yet.
            for (int i = 0; i < 2; i++)
            {
                c.Publish(0, (ushort)(30 + i));
            }
            ushort[] pending = [12, 9, 15];
            ulong[] counters = [7, 8, 9];
            InflightTracking.Initialize((nint)area, RawVhostClient.QueueSize);
            for (int k = 0; k < pending.Length; k++)
            {
                ushort head = pending[k];
                ulong data = RawVhostClient.DataGpa(0) + (ulong)(k * 4096);
                Blk.Fill(c, data, 4096, seed: 20 + k);
                c.WriteDesc(RawVhostClient.DescGpa(0), head, Blk.Header(c, 0, k, Virtio.BlkTOut, (ulong)(k * 8)), 16, Virtio.DescFNext, (ushort)(head + 1));
                c.WriteDesc(RawVhostClient.DescGpa(0), head + 1, data, 4096, Virtio.DescFNext, (ushort)(head + 2));
                c.WriteDesc(RawVhostClient.DescGpa(0), head + 2, Blk.Status(c, 0, k), 1, Virtio.DescFWrite, 0);
                c.Publish(0, head);
                nint state = area + InflightTracking.HeaderSize + head * InflightTracking.DescStateSize;
                Poke.U8(state + InflightTracking.InflightOffset, 1);
                Poke.U64(state + InflightTracking.CounterOffset, counters[k]);
            }
            // Used ring: indices 0..2 hold 30, 31 and 20; the area still says used index 2 and marks 20.
            nint used = c.HostAddress(RawVhostClient.UsedGpa(0));
            Poke.U32(used + 4, 30);
            Poke.U32(used + 12, 31);
            Poke.U32(used + 20, 20);
            Poke.U16(used + 2, 3);
            c.Publish(0, (ushort)20);
            Poke.U8(area + InflightTracking.HeaderSize + 20 * InflightTracking.DescStateSize, 1);
            Poke.U64(area + InflightTracking.HeaderSize + 20 * InflightTracking.DescStateSize + InflightTracking.CounterOffset, 6);
            Poke.U16(area + InflightTracking.LastBatchHeadOffset, 20);
            Poke.U16(area + InflightTracking.UsedIdxOffset, 2);
            // Avail: 30, 31, 12, 9, 15, 20 were published (6 entries); the dead back-end took 6.
            // QEMU restores the base to the used index (3); heads 12, 9, 15 are found in flight.
            c.InflightFd = fd;
            c.InflightSize = size;
            c.Negotiate();
            // No kick: the three writes complete by themselves, in their original order.
            Assert.True(c.WaitUsed(0, 6), $"used index {c.UsedIdx(0)}");
            Assert.Equal(12u, c.UsedElement(0, 3).Id);
            Assert.Equal(9u, c.UsedElement(0, 4).Id);
            Assert.Equal(15u, c.UsedElement(0, 5).Id);
            VirtQueue q0 = h.Server.CurrentConnection!.Queues[0]!;
            Assert.Equal(3, q0.Resubmitted);
            byte[] block = new byte[4096];
            for (int k = 0; k < 3; k++)
            {
                Assert.Equal(Virtio.BlkSOk, Blk.StatusOf(c, 0, k));
                await h.Device.ReadAsync(k * 8, block);
                Assert.Equal(Blk.Bytes(c, RawVhostClient.DataGpa(0) + (ulong)(k * 4096), 4096).ToArray(), block);
            }
            // Head 20 was not run again (the used index would be 7), and a new request after
            // them is served exactly once.
            Thread.Sleep(100);
            Assert.Equal(6, c.UsedIdx(0));
            ulong d = RawVhostClient.DataGpa(0) + 0x40000;
            c.Q(0).NextDesc = 40;
            Assert.Equal(Virtio.BlkSOk, Blk.Write(c, 0, 800, d, 4096).Item1);
            Assert.Equal(7, c.UsedIdx(0));
        }
        finally
        {
            Native.Munmap(area, (nuint)size);
            Native.Close(fd);
        }
    }

    [Fact]
    public async Task StaleBase_DoesNotRunCompletedRequestsAgain()
    {
        await using var h = new Harness();
        int fd = Poke.Memfd();
        long region = InflightTracking.QueueRegionSize(RawVhostClient.QueueSize);
        ulong size = (ulong)(2 * region);
        Assert.Equal(0, Native.Ftruncate(fd, (long)size));
        nint area = Native.Mmap(0, (nuint)size, Native.PROT_READ | Native.PROT_WRITE, Native.MAP_SHARED, fd, 0);
        try
        {
            using var c = new RawVhostClient(h.SocketPath);
            // A back-end stopped gracefully after QEMU had lost it: it completed all four requests it had
            // taken (used index 4, nothing marked in flight), but QEMU saw the used index at 2 when the
            // connection dropped, and that is the base it sends the next back-end.
            InflightTracking.Initialize((nint)area, RawVhostClient.QueueSize);
            nint used = c.HostAddress(RawVhostClient.UsedGpa(0));
            for (int i = 0; i < 4; i++)
            {
                c.Publish(0, (ushort)(30 + i));
                Poke.U32(used + 4 + 8 * i, (uint)(30 + i));
            }
            Poke.U16(used + 2, 4);
            Poke.U16(area + InflightTracking.UsedIdxOffset, 4);
            c.InflightFd = fd;
            c.InflightSize = size;
            c.VringBase = 2;
            c.Negotiate();
            // Heads 32 and 33 are not run again (their descriptors are gone: a re-run would complete them
            // with an error and move the used index); a new request is served exactly once.
            Thread.Sleep(100);
            Assert.Equal(4, c.UsedIdx(0));
            c.Q(0).NextDesc = 40;
            Assert.Equal(Virtio.BlkSOk, Blk.Write(c, 0, 800, RawVhostClient.DataGpa(0), 4096).Item1);
            Assert.Equal(5, c.UsedIdx(0));
        }
        finally
        {
            Native.Munmap(area, (nuint)size);
            Native.Close(fd);
        }
    }

    [Fact]
    public async Task NewBackEnd_ServesWaitingRequestsWithoutAKick_AndInterruptsForUsedOnes()
    {
        await using var h = new Harness();
        int fd = Poke.Memfd();
        long region = InflightTracking.QueueRegionSize(RawVhostClient.QueueSize);
        ulong size = (ulong)(2 * region);
        Assert.Equal(0, Native.Ftruncate(fd, (long)size));
        nint area = Native.Mmap(0, (nuint)size, Native.PROT_READ | Native.PROT_WRITE, Native.MAP_SHARED, fd, 0);
        try
        {
            using var c = new RawVhostClient(h.SocketPath);
            // The previous back-end completed everything it took (used index 2) while QEMU no longer
            // listened to its call fd, and the guest queued a write and kicked while no back-end was there.
            // The next back-end gets no kick for it, and must interrupt the guest for what is used.
            InflightTracking.Initialize((nint)area, RawVhostClient.QueueSize);
            nint used = c.HostAddress(RawVhostClient.UsedGpa(0));
            for (int i = 0; i < 2; i++)
            {
                c.Publish(0, (ushort)(30 + i));
                Poke.U32(used + 4 + 8 * i, (uint)(30 + i));
            }
            Poke.U16(used + 2, 2);
            Poke.U16(area + InflightTracking.UsedIdxOffset, 2);
            ulong data = RawVhostClient.DataGpa(0);
            Blk.Fill(c, data, 4096, seed: 5);
            c.WriteDesc(RawVhostClient.DescGpa(0), 40, Blk.Header(c, 0, 0, Virtio.BlkTOut, 64), 16, Virtio.DescFNext, 41);
            c.WriteDesc(RawVhostClient.DescGpa(0), 41, data, 4096, Virtio.DescFNext, 42);
            c.WriteDesc(RawVhostClient.DescGpa(0), 42, Blk.Status(c, 0, 0), 1, Virtio.DescFWrite, 0);
            c.Publish(0, (ushort)40);
            c.SetUsedEvent(0, 0); // EVENT_IDX: the guest still waits for the first entry to be used
            c.InflightFd = fd;
            c.InflightSize = size;
            c.Negotiate(eventIdx: true);
            Assert.True(c.CallSignalled(0, 2000), "no interrupt for the entries the previous back-end published");
            Assert.True(c.WaitUsed(0, 3), $"used index {c.UsedIdx(0)}: the waiting request was not served");
            Assert.Equal(40u, c.UsedElement(0, 2).Id);
            Assert.Equal(Virtio.BlkSOk, Blk.StatusOf(c, 0, 0));
        }
        finally
        {
            Native.Munmap(area, (nuint)size);
            Native.Close(fd);
        }
    }
}

/// <summary>Raw memory access for the tests that play a crashed back-end.</summary>
internal static unsafe class Poke
{
    public static byte U8(nint a) => *(byte*)a;
    public static ushort U16(nint a) => *(ushort*)a;
    public static void U8(nint a, byte v) => *(byte*)a = v;
    public static void U16(nint a, ushort v) => *(ushort*)a = v;
    public static void U32(nint a, uint v) => *(uint*)a = v;
    public static void U64(nint a, ulong v) => *(ulong*)a = v;

    public static int Memfd()
    {
        byte* name = stackalloc byte[] { (byte)'t', 0 };
        int fd = Native.MemfdCreate(name, Native.MFD_CLOEXEC);
        Assert.True(fd >= 0);
        return fd;
    }
}
