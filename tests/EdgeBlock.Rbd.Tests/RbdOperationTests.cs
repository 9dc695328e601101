using EdgeBlock.Rbd.Tests.Support;
using EdgeBlock.Storage;

namespace EdgeBlock.Rbd.Tests;

[Collection(CephCollection.Name)]
public sealed class RbdOperationTests(CephTestCluster ceph)
{
    private const int Rounds = 1000;

    [CephFact(ReleaseOnly = true)]
    public async Task ReadWriteFlush_SteadyState_AllocatesNothingPerIo()
    {
        await using OpenedImage opened = OpenedImage.Create(ceph);
        RbdBlockDevice device = opened.Device;
        // Pinned, as the target's buffers are: pinning an unpinned array would cost a GCHandle, not a heap object, anyway.
        byte[] buffer = GC.AllocateArray<byte>(4096, pinned: true);
        await Run(device, buffer, 200); // warm up: operations pooled, thread-pool queues grown

        // The counter is process-wide: what earlier tests left running (a daemon's timers, librados reconnecting
        // after the OSD test) allocates now and then. The least of three windows drops those bursts; an allocation
        // per I/O shows in every window.
        long allocated = long.MaxValue;
        for (int attempt = 0; attempt < 3; attempt++)
        {
            long before = GC.GetTotalAllocatedBytes(precise: true);
            await Run(device, buffer, Rounds);
            allocated = Math.Min(allocated, GC.GetTotalAllocatedBytes(precise: true) - before);
        }

        // 3 I/Os per round. One RbdOperation is ~100 bytes; a budget of 8 bytes per I/O leaves room for the
        // runtime's own occasional allocations (thread-pool, timers) and none for one object per I/O.
        Assert.True(allocated < Rounds * 3 * 8, $"{allocated} bytes allocated for {Rounds * 3} I/Os (least of 3 windows)");
    }

    private static void Check(BlockStatus status)
    {
        if (status != BlockStatus.Success)
        {
            throw new Xunit.Sdk.XunitException($"I/O failed: {status}");
        }
    }

    private static async Task Run(RbdBlockDevice device, byte[] buffer, int rounds)
    {
        for (int i = 0; i < rounds; i++)
        {
            long lba = i % 64;
            // Checked by hand: xunit's Assert.Equal allocates (comparers, boxing), which would hide what we measure.
            Check(await device.WriteAsync(lba, buffer, fua: false));
            Check(await device.ReadAsync(lba, buffer));
            Check(i % 8 == 0 ? await device.FlushAsync() : await device.DeallocateAsync(lba + 64, 1));
        }
    }
}
