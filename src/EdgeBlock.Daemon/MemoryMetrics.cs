using EdgeBlock.Storage;
using Prometheus;

namespace EdgeBlock.Daemon;

/// <summary>Prometheus series of the memory budget (issue H): the I/O data buffers of all transports together.</summary>
internal sealed class MemoryMetrics
{
    private readonly DataBufferPool _buffers;
    private readonly Gauge _budget;
    private readonly Gauge _inUse;
    private readonly Gauge _mapped;
    private readonly Counter _waits;

    public MemoryMetrics(MetricFactory factory, DataBufferPool buffers)
    {
        _buffers = buffers;
        _budget = factory.CreateGauge("edgeblock_memory_budget_bytes", "Bytes of I/O data buffers allowed at once (serve --memory-budget)");
        _inUse = factory.CreateGauge("edgeblock_memory_in_use_bytes", "Bytes of I/O data buffers rented by commands now");
        _mapped = factory.CreateGauge("edgeblock_memory_mapped_bytes", "Bytes of I/O data buffers mapped now: in use plus kept for reuse (never above the budget)");
        _waits = factory.CreateCounter("edgeblock_memory_waits_total", "Times a command waited for the memory budget before its data could move");
    }

    public void Refresh()
    {
        _budget.Set(_buffers.BudgetBytes);
        _inUse.Set(_buffers.InUseBytes);
        _mapped.Set(_buffers.MappedBytes);
        _waits.IncTo(_buffers.Waits);
    }
}
