using System.Collections.Concurrent;
using System.Diagnostics.Tracing;

namespace EdgeBlock.Target.Tests.Support;

/// <summary>
/// Samples the runtime's GC AllocationTick events (one per ~100 KB allocated) so an allocation test
/// that fails can say which types were allocated, not just how many bytes.
/// </summary>
internal sealed class AllocationSampler : EventListener
{
    private const EventKeywords GcKeyword = (EventKeywords)0x1;
    private readonly ConcurrentDictionary<string, long> _bytesByType = new();

    protected override void OnEventSourceCreated(EventSource source)
    {
        if (source.Name == "Microsoft-Windows-DotNETRuntime") EnableEvents(source, EventLevel.Verbose, GcKeyword);
    }

    protected override void OnEventWritten(EventWrittenEventArgs e)
    {
        if (e.EventName?.StartsWith("GCAllocationTick", StringComparison.Ordinal) != true || e.Payload == null) return;
        int typeIndex = e.PayloadNames!.IndexOf("TypeName");
        int amountIndex = e.PayloadNames.IndexOf("AllocationAmount64");
        string type = typeIndex >= 0 ? e.Payload[typeIndex] as string ?? "?" : "?";
        long amount = amountIndex >= 0 ? Convert.ToInt64(e.Payload[amountIndex]) : 0;
        _bytesByType.AddOrUpdate(type, amount, (_, v) => v + amount);
    }

    public string Top(int count = 5) =>
        string.Join(", ", _bytesByType.OrderByDescending(kv => kv.Value).Take(count).Select(kv => $"{kv.Key} ~{kv.Value / 1024} KiB"));
}
