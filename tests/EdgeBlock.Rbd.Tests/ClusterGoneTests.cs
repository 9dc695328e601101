using System.Diagnostics;
using EdgeBlock.Rbd.Tests.Support;
using EdgeBlock.Storage;

namespace EdgeBlock.Rbd.Tests;

[Collection(CephCollection.Name)]
public sealed class ClusterGoneTests(CephTestCluster ceph)
{
    [CephFact]
    public async Task Write_OsdKilled_FailsNotReadyAfterTheTimeoutAndResumesWhenItIsBack()
    {
        await using OpenedImage opened = OpenedImage.Create(ceph, timeout: TimeSpan.FromSeconds(5));
        opened.RemoveOnDispose = false;
        byte[] data = GC.AllocateArray<byte>(4096, pinned: true);
        Assert.Equal(BlockStatus.Success, await opened.Device.WriteAsync(0, data, fua: true));
        Assert.Equal(0, CephTestCluster.RunScript("kill-osd", ceph.Directory).Exit);
        try
        {
            var elapsed = Stopwatch.StartNew();

            BlockStatus status = await opened.Device.WriteAsync(1, data, fua: true).AsTask().WaitAsync(TimeSpan.FromSeconds(60));

            // Namespace Not Ready without DNR: the host retries; the daemon did not hang.
            Assert.Equal(BlockStatus.NotReady, status);
            Assert.InRange(elapsed.Elapsed, TimeSpan.FromSeconds(4), TimeSpan.FromSeconds(30));
            Assert.Equal(1, opened.Device.Timeouts);
        }
        finally
        {
            (int exit, string output) = CephTestCluster.RunScript("start-osd", ceph.Directory);
            Assert.True(exit == 0, output);
        }

        Assert.Equal(BlockStatus.Success, await opened.Device.WriteAsync(2, data, fua: true));
    }

    [CephFact]
    public async Task Write_OsdKilledAfterAFlush_FailsNotReadyInsteadOfCompletingUnstored()
    {
        await using OpenedImage opened = OpenedImage.Create(ceph, timeout: TimeSpan.FromSeconds(5));
        opened.RemoveOnDispose = false;
        byte[] data = GC.AllocateArray<byte>(4096, pinned: true), read = GC.AllocateArray<byte>(4096, pinned: true);
        new Random(11).NextBytes(data);
        Assert.Equal(BlockStatus.Success, await opened.Device.WriteAsync(0, data, fua: false));
        // librbd's cache turns write-around after the first flush: from then on it would complete writes before storing them.
        Assert.Equal(BlockStatus.Success, await opened.Device.FlushAsync());
        Assert.Equal(0, CephTestCluster.RunScript("kill-osd", ceph.Directory).Exit);
        try
        {
            BlockStatus status = await opened.Device.WriteAsync(1, data, fua: false).AsTask().WaitAsync(TimeSpan.FromSeconds(60));

            // Not Success: a completed write is in the cluster, and this one could not be stored; the host sends it again.
            Assert.Equal(BlockStatus.NotReady, status);
        }
        finally
        {
            (int exit, string output) = CephTestCluster.RunScript("start-osd", ceph.Directory);
            Assert.True(exit == 0, output);
        }

        Assert.Equal(BlockStatus.Success, await opened.Device.WriteAsync(1, data, fua: false));
        Assert.Equal(BlockStatus.Success, await opened.Device.ReadAsync(1, read));
        Assert.Equal(data, read);
    }
}
