using EdgeBlock.Initiator;
using EdgeBlock.Nvme;
using EdgeBlock.Storage;
using EdgeBlock.Target.Tests.Support;

namespace EdgeBlock.Target.Tests;

/// <summary>A namespace leaves by count: its device may close once the commands inside it finished, not after a guessed delay.</summary>
public sealed class NamespaceDrainTests
{
    private const int Block = TestTarget.BlockSize;

    [Fact]
    public async Task Drain_WaitsForTheReadInsideTheDevice_ThenReturnsZero_AndTheReadCompletes()
    {
        await using var t = TestTarget.Start(withNamespace: false);
        var gate = new GatedDevice(new MemoryBlockDevice(TestTarget.NamespaceBytes, Block));
        t.AddNamespace(1, device: gate);
        await using var host = await t.ConnectAsync(ioQueues: 1);
        var (ns, read) = await RemoveWithAReadInsideAsync(t, host, gate);
        var drain = ns.DrainAsync(TimeSpan.FromSeconds(10));

        await Task.Delay(200);
        Assert.False(drain.IsCompleted, "drain returned while a read was inside the device");
        Assert.Equal(1, ns.InFlight);
        gate.Open();

        Assert.Equal(0, await drain.WaitAsync(Waits.Command));
        Assert.True((await read.WaitAsync(Waits.Command)).IsSuccess);
    }

    [Fact]
    public async Task Drain_WithNothingInFlight_ReturnsAtOnce()
    {
        await using var t = TestTarget.Start();
        var ns = t.Subsystem.RemoveNamespace(1)!;

        var drain = ns.DrainAsync(TimeSpan.FromSeconds(30));

        // Not a timing test: a drain that waited for anything would still be pending.
        Assert.True(drain.IsCompleted);
        Assert.Equal(0, await drain);
    }

    [Fact]
    public async Task Drain_GivesUpAfterItsBound_AndSaysHowManyAreStillInside()
    {
        await using var t = TestTarget.Start(withNamespace: false);
        var gate = new GatedDevice(new MemoryBlockDevice(TestTarget.NamespaceBytes, Block));
        t.AddNamespace(1, device: gate);
        await using var host = await t.ConnectAsync(ioQueues: 1);
        var (ns, read) = await RemoveWithAReadInsideAsync(t, host, gate);

        Assert.Equal(1, await ns.DrainAsync(TimeSpan.FromMilliseconds(100)).WaitAsync(Waits.Command));
        gate.Open();
        Assert.True((await read.WaitAsync(Waits.Command)).IsSuccess);
        Assert.Equal(0, ns.InFlight);
    }

    [Fact]
    public async Task CommandToAClosingNamespace_CompletesWithInvalidNamespace_AndNeverReachesTheDevice()
    {
        await using var t = TestTarget.Start();
        await using var host = await t.ConnectAsync(ioQueues: 1);
        var ns = t.Subsystem.FindNamespace(1)!;
        var device = t.Device(1);
        Assert.Equal(0, await ns.DrainAsync(TimeSpan.FromSeconds(1)));
        long reads = device.Reads, writes = device.Writes, flushes = device.Flushes;

        var r = await host.ReadAsync(1, 0, 1, new byte[Block]);
        var w = await host.WriteAsync(1, 0, 1, new byte[Block]);
        var f = await host.FlushAsync(1);
        var all = await host.FlushAsync(); // NSID FFFFFFFFh skips a closing namespace: its teardown flushes it

        Assert.Equal(NvmeStatus.InvalidNamespace, r.Status);
        Assert.Equal(NvmeStatus.InvalidNamespace, w.Status);
        Assert.Equal(NvmeStatus.InvalidNamespace, f.Status);
        Assert.True(all.IsSuccess, all.ToString());
        Assert.Equal((reads, writes, flushes), (device.Reads, device.Writes, device.Flushes));
        Assert.True(ns.IsClosing);
    }

    /// <summary>Sends a read, waits until it is inside the gated device, then takes namespace 1 out of its subsystem.</summary>
    private static async Task<(Namespace Ns, Task<NvmeCompletion> Read)> RemoveWithAReadInsideAsync(TestTarget t, NvmeController host, GatedDevice gate)
    {
        var ns = t.Subsystem.FindNamespace(1)!;
        var read = host.ReadAsync(1, 0, 1, new byte[Block]).AsTask();
        Assert.True(await gate.Entered.Task.WaitAsync(Waits.Command) > 0);
        Assert.Same(ns, t.Subsystem.RemoveNamespace(1));
        return (ns, read);
    }

    /// <summary>Holds every read until <see cref="Open"/>; <see cref="Entered"/> completes with the count of reads waiting.</summary>
    private sealed class GatedDevice(IBlockDevice inner) : IBlockDevice
    {
        private readonly TaskCompletionSource _open = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _waiting;

        public TaskCompletionSource<int> Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public void Open() => _open.TrySetResult();

        public int BlockSize => inner.BlockSize;
        public long BlockCount => inner.BlockCount;
        public bool SupportsDeallocate => inner.SupportsDeallocate;

        public async ValueTask<BlockStatus> ReadAsync(long lba, Memory<byte> buffer)
        {
            Entered.TrySetResult(Interlocked.Increment(ref _waiting));
            await _open.Task;
            return await inner.ReadAsync(lba, buffer);
        }

        public ValueTask<BlockStatus> WriteAsync(long lba, ReadOnlyMemory<byte> data, bool fua) => inner.WriteAsync(lba, data, fua);
        public ValueTask<BlockStatus> FlushAsync() => inner.FlushAsync();
        public ValueTask<BlockStatus> WriteZeroesAsync(long lba, long blocks, bool deallocate) => inner.WriteZeroesAsync(lba, blocks, deallocate);
        public ValueTask<BlockStatus> DeallocateAsync(long lba, long blocks) => inner.DeallocateAsync(lba, blocks);
        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
