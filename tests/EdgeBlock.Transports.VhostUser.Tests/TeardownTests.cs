using System.Diagnostics;
using EdgeBlock.Storage;

namespace EdgeBlock.Transports.VhostUser.Tests;

/// <summary>
/// Teardown by count: stopping an export returns once every request it handed to the device has
/// completed, never earlier and never by a fixed delay; a device that does not answer holds it
/// only for the drain timeout, and what is still in flight is logged.
/// </summary>
public sealed class TeardownTests
{
    [Fact]
    public async Task DisposeServer_ReturnsOnlyAfterTheRequestInsideTheDeviceCompleted_AndNoneStartsAfter()
    {
        var device = new GateDevice(new MemoryBlockDevice(Harness.DeviceBytes)) { Linger = TimeSpan.FromMilliseconds(200) };
        await using var h = new Harness(device);
        using var c = h.Connect();
        HoldRead(c, device, slot: 0);

        long disposedAt = 0;
        Task dispose = h.Server.DisposeAsync().AsTask().ContinueWith(_ => disposedAt = Stopwatch.GetTimestamp(), TaskContinuationOptions.ExecuteSynchronously);
        await Task.Delay(300);
        Assert.False(dispose.IsCompleted, "the server was disposed while a request was inside the device");

        device.Open();
        Assert.True(await Task.WhenAny(dispose, Task.Delay(TimeSpan.FromSeconds(10))) == dispose, "disposing did not return after the device completed");
        Assert.Equal(1, device.Finished);
        Assert.True(disposedAt >= device.FinishedAt, "disposing returned before the device call completed");
        Assert.True(c.WaitUsed(0, 1), "the completed read was not returned to the guest");
        Assert.Equal(Virtio.BlkSOk, Blk.StatusOf(c, 0, 0));

        // A chain made available after the server went is not taken: no device call starts any more.
        PublishRead(c, slot: 1);
        await Task.Delay(200);
        Assert.Equal(1, device.Started);
        Assert.False(h.Logger.Contains("still in flight"), h.Logger.ToString());
    }

    [Fact]
    public async Task SilentDevice_HoldsTeardownOnlyForTheDrainTimeout_AndTheRequestsLeftAreLogged()
    {
        var device = new GateDevice(new MemoryBlockDevice(Harness.DeviceBytes));
        var options = new VhostUserBlkOptions { MaxQueues = 4, DrainTimeout = TimeSpan.FromMilliseconds(300) };
        await using var h = new Harness(device, options);
        using var c = h.Connect();
        HoldRead(c, device, slot: 0);

        long start = Stopwatch.GetTimestamp();
        Task dispose = h.Server.DisposeAsync().AsTask();
        Assert.True(await Task.WhenAny(dispose, Task.Delay(TimeSpan.FromSeconds(10))) == dispose, "disposing waited for a device that never answers");
        Assert.True(Stopwatch.GetElapsedTime(start) >= TimeSpan.FromMilliseconds(250), "disposing did not wait for the device at all");
        Assert.True(h.Logger.Contains("with 1 requests still in flight in the device"), h.Logger.ToString());
        Assert.Equal(0, device.Finished);

        // The late completion still lands in mapped memory and reaches the guest.
        device.Open();
        Assert.True(c.WaitUsed(0, 1), "the late completion was not published");
        Assert.Equal(Virtio.BlkSOk, Blk.StatusOf(c, 0, 0));
    }

    [Fact]
    public async Task FrontEndGone_EndsItsSessionOnlyAfterTheRequestInsideTheDeviceCompleted()
    {
        var device = new GateDevice(new MemoryBlockDevice(Harness.DeviceBytes));
        await using var h = new Harness(device);
        var c = h.Connect();
        HoldRead(c, device, slot: 0);
        c.Dispose(); // QEMU quits: the session ends, its memory table and rings go

        await Task.Delay(300);
        Assert.Null(h.Server.LastDisconnectReason);
        device.Open();
        var deadline = Stopwatch.StartNew();
        while (h.Server.LastDisconnectReason is null && deadline.Elapsed < TimeSpan.FromSeconds(10))
        {
            await Task.Delay(10);
        }
        Assert.NotNull(h.Server.LastDisconnectReason);
        Assert.Equal(1, device.Finished);
        Assert.Equal(new VhostUserBlkStatistics(1, 0, 4096, 0), h.Server.Statistics);
    }

    /// <summary>Makes a 4 KiB read available on queue 0 (its header and status at slot) and kicks.</summary>
    private static void PublishRead(RawVhostClient c, int slot)
    {
        ulong data = RawVhostClient.DataGpa(0);
        ushort head = c.AddChain(0,
            new(Blk.Header(c, 0, slot, Virtio.BlkTIn, (ulong)slot * 8), 16, false),
            new(data, 4096, true),
            new(Blk.Status(c, 0, slot), 1, true));
        c.Publish(0, head);
        c.Kick(0);
    }

    /// <summary>A read that is inside the device, held at its gate, when this returns.</summary>
    private static void HoldRead(RawVhostClient c, GateDevice device, int slot)
    {
        PublishRead(c, slot);
        Assert.True(device.Entered.Wait(TimeSpan.FromSeconds(5)), "the read never reached the device");
    }

    /// <summary>Holds reads at a gate until the test opens it, then lingers, then completes them.</summary>
    private sealed class GateDevice(IBlockDevice inner) : IBlockDevice
    {
        private readonly TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _started, _finished;

        public TimeSpan Linger { get; init; }
        public ManualResetEventSlim Entered { get; } = new();
        public int Started => Volatile.Read(ref _started);
        public int Finished => Volatile.Read(ref _finished);
        public long FinishedAt { get; private set; }
        public int BlockSize => inner.BlockSize;
        public long BlockCount => inner.BlockCount;
        public bool SupportsDeallocate => inner.SupportsDeallocate;

        public void Open() => _gate.TrySetResult();

        public async ValueTask<BlockStatus> ReadAsync(long lba, Memory<byte> buffer)
        {
            Interlocked.Increment(ref _started);
            Entered.Set();
            await _gate.Task;
            await Task.Delay(Linger);
            BlockStatus status = await inner.ReadAsync(lba, buffer);
            FinishedAt = Stopwatch.GetTimestamp();
            Interlocked.Increment(ref _finished);
            return status;
        }

        public ValueTask<BlockStatus> WriteAsync(long lba, ReadOnlyMemory<byte> data, bool fua) => inner.WriteAsync(lba, data, fua);
        public ValueTask<BlockStatus> FlushAsync() => inner.FlushAsync();
        public ValueTask<BlockStatus> WriteZeroesAsync(long lba, long blockCount, bool deallocate) => inner.WriteZeroesAsync(lba, blockCount, deallocate);
        public ValueTask<BlockStatus> DeallocateAsync(long lba, long blockCount) => inner.DeallocateAsync(lba, blockCount);
        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
