using System.Diagnostics;
using EdgeBlock.Target;

namespace EdgeBlock.Daemon.Management;

/// <summary>Statistics of the live target (`edgeblock stats`): read from its counters, nothing is reset.</summary>
public sealed partial class ManagementService
{
    public StatsInfo Stats()
    {
        var namespaces = _target.Subsystems.OrderBy(s => s.NqnName, StringComparer.Ordinal)
            .SelectMany(s => s.Namespaces.Values.Select(ns => Describe(s.NqnName, ns))).ToList();
        var controllers = _target.Controllers.Where(c => !c.IsDiscovery).OrderBy(c => c.Cntlid).Select(c =>
        {
            var queues = c.Queues;
            return new ControllerStats(c.Cntlid, c.HostNqn, c.Subsystem.NqnName, queues.Count, c.GrantedIoQueues,
                queues.FirstOrDefault()?.Transport.RemoteEndpoint, c.CreatedAt);
        }).ToList();
        return new StatsInfo(ProcessNow(), namespaces, controllers, VolumeQos());
    }

    public NamespaceStats NamespaceStats(string nqn, uint nsid)
    {
        FindSpec(_desired, nqn);
        var ns = _target.FindSubsystem(nqn)?.FindNamespace(nsid)
            ?? throw ManagementException.NotFound($"subsystem {nqn} has no running namespace {nsid} (see `edgeblock namespace list {nqn}`)");
        return Describe(nqn, ns);
    }

    /// <summary>Every volume exported since start (its QoS flow exists), with what QoS did to it.</summary>
    private List<VolumeQosStats> VolumeQos() =>
        _pools == null ? [] : _pools.Qos.Flows().OrderBy(f => f.Pool, StringComparer.Ordinal).ThenBy(f => f.Volume, StringComparer.Ordinal).Select(f =>
        {
            string key = $"{f.Pool}/{f.Volume}";
            string limits = _desired.Qos?.FindVolume(key) is { } spec ? QosRequests.Describe(spec) : "-";
            return new VolumeQosStats(key, limits, Math.Round(f.Flow.ThrottledSeconds, 3), f.Flow.QueueDepth);
        }).ToList();

    private ProcessStats ProcessNow()
    {
        var cpu = Environment.CpuUsage;
        using var process = Process.GetCurrentProcess();
        return new ProcessStats(Environment.ProcessId, (long)_uptime.Elapsed.TotalSeconds, cpu.TotalTime.TotalSeconds, cpu.UserTime.TotalSeconds,
            cpu.PrivilegedTime.TotalSeconds, Environment.WorkingSet, GC.GetTotalMemory(forceFullCollection: false), process.Threads.Count);
    }

    private static NamespaceStats Describe(string nqn, Namespace ns)
    {
        var c = ns.Counters;
        return new NamespaceStats(nqn, ns.Nsid,
            new OpStats(Interlocked.Read(ref c.ReadCommands), Interlocked.Read(ref c.BytesRead), Latency(c.ReadLatency)),
            new OpStats(Interlocked.Read(ref c.WriteCommands), Interlocked.Read(ref c.BytesWritten), Latency(c.WriteLatency)),
            new OpStats(Interlocked.Read(ref c.OtherCommands), 0, Latency(c.OtherLatency)),
            Interlocked.Read(ref c.Errors),
            c.ErrorsByStatus.Snapshot().Select(e => new StatusCount(StatusNames.Hex((byte)e.Sct, 1), StatusNames.Hex(e.Sc, 2), StatusNames.Of(e.Sct, e.Sc), e.Count)).ToList());
    }

    private static LatencyStats Latency(LatencyHistogram histogram)
    {
        var s = histogram.Snapshot();
        static double Us(double seconds) => Math.Round(seconds * 1e6, 1);
        return new LatencyStats(s.Count, Us(s.MeanSeconds), Us(s.Quantile(0.5)), Us(s.Quantile(0.9)), Us(s.Quantile(0.99)), Us(s.Quantile(0.999)));
    }
}
