namespace EdgeBlock.Target.Tests.Support;

/// <summary>
/// A theory that only means something in an optimized build: Debug builds compile async state
/// machines as classes, so every await allocates and allocation budgets would fail for no reason.
/// ./test.sh runs the Release build, where these run.
/// </summary>
public sealed class ReleaseOnlyTheoryAttribute : TheoryAttribute
{
    public ReleaseOnlyTheoryAttribute()
    {
#if DEBUG
        Skip = "allocation budgets are checked in Release builds (./test.sh); Debug async state machines are classes";
#endif
    }
}
