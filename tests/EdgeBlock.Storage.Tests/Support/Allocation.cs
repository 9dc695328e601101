namespace EdgeBlock.Storage.Tests.Support;

/// <summary>
/// Tests that count bytes allocated by the whole process run alone, after the parallel ones,
/// so other tests' allocations do not show up in their measurements.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class AllocationCollection
{
    public const string Name = "Allocation measurements";
}
