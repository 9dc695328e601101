namespace EdgeBlock.Volumes.Tests;

/// <summary>
/// A fact that only means something in an optimized build: Debug builds compile async state
/// machines as classes, so every await allocates. ./test.sh runs the Release build.
/// </summary>
public sealed class ReleaseOnlyFactAttribute : FactAttribute
{
    public ReleaseOnlyFactAttribute()
    {
#if DEBUG
        Skip = "allocation budgets are checked in Release builds (./test.sh)";
#endif
    }
}
