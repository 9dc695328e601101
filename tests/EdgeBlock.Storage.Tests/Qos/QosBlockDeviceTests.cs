using EdgeBlock.Storage.Qos;
using Microsoft.Extensions.Time.Testing;

namespace EdgeBlock.Storage.Tests.Qos;

public class QosBlockDeviceTests
{
    [Fact]
    public void Io_NoLimitNoWeight_GoesStraightThroughAndAllocatesNothing()
    {
        using var scheduler = new QosScheduler(new FakeTimeProvider());
        var device = new QosBlockDevice(new NullBlockDevice(1 << 20), scheduler.CreateFlow());
        var (failures, allocated) = ReadAndWriteRounds(device, 1000);

        Assert.Equal(0, failures);
        Assert.Equal(0, allocated);
        Assert.Equal(0, scheduler.InFlight); // not even counted
    }

    [Fact]
    public void Io_WeightedBelowTheCap_IsCountedAndAllocatesNothing()
    {
        using var scheduler = new QosScheduler(new FakeTimeProvider());
        var flow = scheduler.CreateFlow();
        scheduler.Set(flow, QosLimits.None, weight: 2);
        var device = new QosBlockDevice(new NullBlockDevice(1 << 20), flow);
        var (failures, allocated) = ReadAndWriteRounds(device, 1000);

        Assert.Equal(0, failures);
        Assert.Equal(0, allocated);
        Assert.True(flow.Throttled);
        Assert.Equal(0, scheduler.InFlight); // each one admitted and given back
    }

    [Fact]
    public void Io_OverTheLimit_WaitsForTheClockThenSucceeds_WithoutAllocating()
    {
        var clock = new ManualClock(); // FakeTimeProvider allocates in ITimer.Change, which would hide ours
        using var scheduler = new QosScheduler(clock);
        var flow = scheduler.CreateFlow();
        scheduler.Set(flow, new QosLimits(Iops: 1000, BurstIops: 1), weight: 0);
        var device = new QosBlockDevice(new NullBlockDevice(1 << 20), flow);
        using var buffer = new AlignedBuffer(4096);
        WaitedRead(clock, device, buffer.Memory); // warms up the pooled state machine, waiter and timer
        WaitedRead(clock, device, buffer.Memory);

        long before = GC.GetAllocatedBytesForCurrentThread();
        int failures = 0;
        for (int i = 0; i < 100; i++) failures += WaitedRead(clock, device, buffer.Memory) ? 0 : 1;
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0, failures);
        Assert.Equal(0, allocated);
    }

    /// <summary>A read that finds the bucket empty: pending until the clock moves a millisecond; then it succeeds.</summary>
    private static bool WaitedRead(ManualClock clock, QosBlockDevice device, Memory<byte> buffer)
    {
        clock.Advance(TimeSpan.FromMilliseconds(1)); // the bucket holds one I/O again
        var first = device.ReadAsync(0, buffer);
        var second = device.ReadAsync(0, buffer);
        bool waited = first.IsCompleted && !second.IsCompleted;
        clock.Advance(TimeSpan.FromMilliseconds(1));
        return waited && second.IsCompleted && first.GetAwaiter().GetResult() == BlockStatus.Success
            && second.GetAwaiter().GetResult() == BlockStatus.Success;
    }

    /// <summary>Failed rounds and bytes allocated on this thread over <paramref name="rounds"/> rounds, after one to warm up.</summary>
    private static (int Failures, long Allocated) ReadAndWriteRounds(IBlockDevice device, int rounds)
    {
        using var buffer = new AlignedBuffer(4096);
        ReadAndWrite(device, buffer.Memory);
        long before = GC.GetAllocatedBytesForCurrentThread();
        int failures = 0;
        for (int i = 0; i < rounds; i++) failures += ReadAndWrite(device, buffer.Memory) ? 0 : 1;
        return (failures, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    private static bool ReadAndWrite(IBlockDevice device, Memory<byte> buffer) =>
        device.ReadAsync(0, buffer).GetAwaiter().GetResult() == BlockStatus.Success
        && device.WriteAsync(8, buffer, fua: true).GetAwaiter().GetResult() == BlockStatus.Success
        && device.FlushAsync().GetAwaiter().GetResult() == BlockStatus.Success;
}
