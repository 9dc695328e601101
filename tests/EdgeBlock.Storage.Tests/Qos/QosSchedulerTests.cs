using EdgeBlock.Storage.Qos;
using Microsoft.Extensions.Time.Testing;

namespace EdgeBlock.Storage.Tests.Qos;

/// <summary>
/// The scheduler on a hand-driven clock (<see cref="FakeTimeProvider"/>: its timer fires inside Advance), against a
/// simulated device: no sleeping, no timing flakiness.
/// </summary>
public class QosSchedulerTests
{
    private const int Io = 4096;

    [Fact]
    public void IopsLimit_GreedyFlowOverTenSimulatedSeconds_HoldsWithinFivePercent()
    {
        var clock = new FakeTimeProvider();
        using var scheduler = new QosScheduler(clock);
        var flow = scheduler.CreateFlow();
        scheduler.Set(flow, new QosLimits(Iops: 1000), weight: 0);

        long done = RunGreedy(clock, [flow], TimeSpan.FromSeconds(10))[0];

        Assert.InRange(done, 10_000 * 0.95, 10_000 * 1.05);
    }

    [Fact]
    public void BandwidthLimit_GreedyFlowOverTenSimulatedSeconds_HoldsWithinFivePercent()
    {
        var clock = new FakeTimeProvider();
        using var scheduler = new QosScheduler(clock);
        var flow = scheduler.CreateFlow();
        scheduler.Set(flow, new QosLimits(BytesPerSecond: 4 << 20), weight: 0); // 4 MiB/s = 1024 × 4 KiB per second

        long bytes = RunGreedy(clock, [flow], TimeSpan.FromSeconds(10))[0] * Io;

        Assert.InRange(bytes, 40L * (1 << 20) * 0.95, 40L * (1 << 20) * 1.05);
    }

    [Fact]
    public void Burst_AfterIdle_LetsTheBurstGoAtOnceThenTheRate()
    {
        var clock = new FakeTimeProvider();
        using var scheduler = new QosScheduler(clock);
        var flow = scheduler.CreateFlow();
        scheduler.Set(flow, new QosLimits(Iops: 100, BurstIops: 50), weight: 0);
        clock.Advance(TimeSpan.FromSeconds(5)); // idle: the bucket is full, and holds no more than the burst

        int atOnce = 0;
        while (flow.AdmitAsync(Io) is { IsCompleted: true } admitted)
        {
            Consume(admitted);
            flow.Complete();
            atOnce++;
        }
        Assert.Equal(50, atOnce);
        Assert.Equal(1, flow.QueueDepth); // the 51st waits for the rate: 10 ms
        clock.Advance(TimeSpan.FromMilliseconds(10));
        Assert.Equal(0, flow.QueueDepth);
    }

    [Fact]
    public void DefaultBurst_IsATenthOfASecond()
    {
        Assert.Equal(100, new QosLimits(Iops: 1000).EffectiveBurstIops);
        Assert.Equal(1, new QosLimits(Iops: 5).EffectiveBurstIops);
        Assert.Equal(1 << 20, new QosLimits(BytesPerSecond: 10 << 20).EffectiveBurstBytes);
    }

    [Fact]
    public void Weights_OneTwoFourOnASaturatedPool_SplitWithinTenPercent()
    {
        var clock = new FakeTimeProvider();
        using var scheduler = new QosScheduler(clock, maxInFlight: 8);
        QosFlow[] flows = [scheduler.CreateFlow(), scheduler.CreateFlow(), scheduler.CreateFlow()];
        for (int i = 0; i < 3; i++) scheduler.Set(flows[i], QosLimits.None, weight: 1 << i);

        long[] done = new SaturatedPool(flows, queueDepth: 32).Run(7000);

        Assert.InRange(done[1] / (double)done[0], 2 * 0.9, 2 * 1.1);
        Assert.InRange(done[2] / (double)done[0], 4 * 0.9, 4 * 1.1);
    }

    [Fact]
    public void Weights_IdleFlow_ItsShareGoesToTheBusyOnes()
    {
        var clock = new FakeTimeProvider();
        using var scheduler = new QosScheduler(clock, maxInFlight: 8);
        QosFlow[] flows = [scheduler.CreateFlow(), scheduler.CreateFlow(), scheduler.CreateFlow()];
        scheduler.Set(flows[0], QosLimits.None, weight: 1);
        scheduler.Set(flows[1], QosLimits.None, weight: 1);
        scheduler.Set(flows[2], QosLimits.None, weight: 2);
        var pool = new SaturatedPool(flows, queueDepth: 32, active: [true, true, false]);

        long[] alone = pool.Run(4000);
        Assert.InRange(alone[0], 2000 * 0.9, 2000 * 1.1); // half each, not the quarter their weight is worth with all three busy
        Assert.InRange(alone[1], 2000 * 0.9, 2000 * 1.1);

        // The idle flow banked nothing while it idled: once busy it gets its half, no more.
        pool.Start(2);
        long[] together = pool.Run(4000);
        Assert.InRange(together[2], 2000 * 0.9, 2000 * 1.1);
        long[] firstHundred = pool.Run(100);
        Assert.InRange(firstHundred[2], 40, 60);
    }

    [Fact]
    public void MaxInFlight_NoWeight_NothingWaits()
    {
        var clock = new FakeTimeProvider();
        using var scheduler = new QosScheduler(clock, maxInFlight: 2);
        var flow = scheduler.CreateFlow();

        for (int i = 0; i < 100; i++) Assert.True(flow.AdmitAsync(Io).IsCompleted);

        Assert.False(flow.Throttled);
        Assert.Equal(int.MaxValue, scheduler.MaxInFlight);
    }

    [Fact]
    public void Weight_BelowTheCap_NothingWaits()
    {
        var clock = new FakeTimeProvider();
        using var scheduler = new QosScheduler(clock, maxInFlight: 4);
        var flow = scheduler.CreateFlow();
        scheduler.Set(flow, QosLimits.None, weight: 3);

        for (int i = 0; i < 4; i++) Assert.True(flow.AdmitAsync(Io).IsCompleted);
        var fifth = flow.AdmitAsync(Io);
        Assert.False(fifth.IsCompleted);
        flow.Complete();
        Assert.True(fifth.IsCompleted);
    }

    [Fact]
    public void GroupLimit_TwoGreedyVolumes_CapsTheirSumAndSharesIt()
    {
        var clock = new FakeTimeProvider();
        using var scheduler = new QosScheduler(clock);
        var group = scheduler.CreateGroup();
        scheduler.Set(group, new QosLimits(Iops: 1000));
        QosFlow[] flows = [scheduler.CreateFlow(group), scheduler.CreateFlow(group)];

        long[] done = RunGreedy(clock, flows, TimeSpan.FromSeconds(10));

        Assert.InRange(done[0] + done[1], 10_000 * 0.95, 10_000 * 1.05);
        Assert.InRange(done[0], 5000 * 0.9, 5000 * 1.1);
    }

    [Fact]
    public void VolumeLimitInAGroup_TheLowerOfTheTwoHolds()
    {
        var clock = new FakeTimeProvider();
        using var scheduler = new QosScheduler(clock);
        var group = scheduler.CreateGroup();
        scheduler.Set(group, new QosLimits(Iops: 1000));
        QosFlow[] flows = [scheduler.CreateFlow(group), scheduler.CreateFlow(group)];
        scheduler.Set(flows[0], new QosLimits(Iops: 200), weight: 0);

        long[] done = RunGreedy(clock, flows, TimeSpan.FromSeconds(10));

        Assert.InRange(done[0], 2000 * 0.95, 2000 * 1.05);
        Assert.InRange(done[1], 8000 * 0.95, 8000 * 1.05); // the group's rest
    }

    [Fact]
    public void ClearLimits_WaitingIo_GoesAtOnce()
    {
        var clock = new FakeTimeProvider();
        using var scheduler = new QosScheduler(clock);
        var flow = scheduler.CreateFlow();
        scheduler.Set(flow, new QosLimits(Iops: 1, BurstIops: 1), weight: 0);
        Consume(flow.AdmitAsync(Io));
        var waiting = flow.AdmitAsync(Io);
        Assert.False(waiting.IsCompleted);

        scheduler.Set(flow, QosLimits.None, weight: 0);

        Assert.True(waiting.IsCompleted);
        Assert.False(flow.Throttled);
    }

    [Fact]
    public void Set_SameLimitsAgain_KeepsTheBucket()
    {
        // Every desired-state change puts the whole QoS section in force again: that must not hand out a new burst.
        var clock = new FakeTimeProvider();
        using var scheduler = new QosScheduler(clock);
        var flow = scheduler.CreateFlow();
        scheduler.Set(flow, new QosLimits(Iops: 1, BurstIops: 1), weight: 0);
        Consume(flow.AdmitAsync(Io));
        var waiting = flow.AdmitAsync(Io);

        scheduler.Set(flow, new QosLimits(Iops: 1, BurstIops: 1), weight: 0);

        Assert.False(waiting.IsCompleted);
        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.True(waiting.IsCompleted);
    }

    [Fact]
    public void ThrottledSeconds_CountsTimeWithIoWaiting()
    {
        var clock = new FakeTimeProvider();
        using var scheduler = new QosScheduler(clock);
        var flow = scheduler.CreateFlow();
        scheduler.Set(flow, new QosLimits(Iops: 2, BurstIops: 1), weight: 0);
        Consume(flow.AdmitAsync(Io));
        var waiting = flow.AdmitAsync(Io);
        clock.Advance(TimeSpan.FromMilliseconds(200));
        Assert.Equal(0.2, flow.ThrottledSeconds, 3);
        clock.Advance(TimeSpan.FromMilliseconds(300)); // released at 500 ms
        Assert.True(waiting.IsCompleted);
        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(0.5, flow.ThrottledSeconds, 3);
    }

    /// <summary>Takes the result of a completed admission (which returns its waiter to the pool).</summary>
    private static void Consume(ValueTask<bool> admitted)
    {
        Assert.True(admitted.IsCompleted);
        admitted.GetAwaiter().GetResult();
    }

    /// <summary>Each flow keeps 32 I/Os admitted or waiting; admitted ones complete at once; the clock moves in 1 ms steps.</summary>
    private static long[] RunGreedy(FakeTimeProvider clock, QosFlow[] flows, TimeSpan duration)
    {
        long[] done = new long[flows.Length];
        var waiting = flows.Select(_ => new List<ValueTask<bool>>()).ToArray();
        void Submit(int f)
        {
            var admitted = flows[f].AdmitAsync(Io);
            if (admitted.IsCompleted) Finish(f, admitted);
            else waiting[f].Add(admitted);
        }
        void Finish(int f, ValueTask<bool> admitted)
        {
            admitted.GetAwaiter().GetResult();
            flows[f].Complete();
            done[f]++;
        }
        for (int step = 0; step < duration.TotalMilliseconds; step++)
        {
            for (int f = 0; f < flows.Length; f++)
            {
                for (int i = waiting[f].Count - 1; i >= 0; i--)
                {
                    if (!waiting[f][i].IsCompleted) continue;
                    Finish(f, waiting[f][i]);
                    waiting[f].RemoveAt(i);
                }
                while (waiting[f].Count < 32) Submit(f);
            }
            clock.Advance(TimeSpan.FromMilliseconds(1));
        }
        return done;
    }

    /// <summary>
    /// A pool that completes one I/O per step, oldest first: saturated as long as more I/Os wait than the cap lets in.
    /// Active flows keep <c>queueDepth</c> I/Os outstanding.
    /// </summary>
    private sealed class SaturatedPool(QosFlow[] flows, int queueDepth, bool[]? active = null)
    {
        private readonly bool[] _active = active ?? flows.Select(_ => true).ToArray();
        private readonly Queue<int> _device = new();
        private readonly List<(int Flow, ValueTask<bool> Admitted)> _waiting = [];
        private readonly int[] _outstanding = new int[flows.Length];

        public void Start(int flow) => _active[flow] = true;

        public long[] Run(int completions)
        {
            long[] done = new long[flows.Length];
            Fill();
            for (int i = 0; i < completions; i++)
            {
                int f = _device.Dequeue();
                _outstanding[f]--;
                flows[f].Complete();
                done[f]++;
                Fill();
            }
            return done;
        }

        private void Fill()
        {
            for (int f = 0; f < flows.Length; f++)
            {
                while (_active[f] && _outstanding[f] < queueDepth)
                {
                    _outstanding[f]++;
                    _waiting.Add((f, flows[f].AdmitAsync(Io)));
                }
            }
            // Admitted ones enter the device in the order the scheduler let them go.
            for (int i = 0; i < _waiting.Count; i++)
            {
                if (!_waiting[i].Admitted.IsCompleted) continue;
                _waiting[i].Admitted.GetAwaiter().GetResult();
                _device.Enqueue(_waiting[i].Flow);
                _waiting.RemoveAt(i--);
            }
        }
    }
}
