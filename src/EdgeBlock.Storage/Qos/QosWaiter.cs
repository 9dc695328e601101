using EdgeBlock.Threading;

namespace EdgeBlock.Storage.Qos;

/// <summary>An I/O held back by QoS: what its caller awaits. Pooled by its scheduler, so waiting allocates nothing in steady state.</summary>
internal sealed class QosWaiter(QosScheduler owner) : ReusableValueTaskSource<bool>(runContinuationsAsynchronously: false)
{
    public QosFlow? Flow;
    public int Bytes;
    /// <summary>Start tag (start-time fair queueing): the virtual time at which its flow's share lets it start.</summary>
    public double Start;

    /// <summary>Lets the caller go on (its continuation runs here, on the releasing thread).</summary>
    public void Release() => SetResult(true);

    protected override void OnResultTaken()
    {
        Flow = null;
        owner.Return(this);
    }
}
