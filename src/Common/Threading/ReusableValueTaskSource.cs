using System.Threading.Tasks.Sources;

namespace EdgeBlock.Threading;

/// <summary>
/// A reusable <see cref="IValueTaskSource{TResult}"/>: an operation object that backs its caller's
/// <see cref="ValueTask{TResult}"/> and goes back to its owner's free list once the result has been read,
/// so steady-state I/O allocates nothing. Subclasses complete it with <see cref="SetResult"/> or
/// <see cref="SetException"/> and say in <see cref="OnResultTaken"/> how they are recycled.
/// </summary>
internal abstract class ReusableValueTaskSource<TResult> : IValueTaskSource<TResult>
{
    private ManualResetValueTaskSourceCore<TResult> _core;

    protected ReusableValueTaskSource(bool runContinuationsAsynchronously)
    {
        _core.RunContinuationsAsynchronously = runContinuationsAsynchronously;
    }

    /// <summary>Whether the awaiting code runs later on the thread pool (true) or inside <see cref="SetResult"/>.</summary>
    protected bool RunContinuationsAsynchronously
    {
        get => _core.RunContinuationsAsynchronously;
        set => _core.RunContinuationsAsynchronously = value;
    }

    /// <summary>The token of the current use; changes each time the result is taken.</summary>
    public short Version => _core.Version;

    /// <summary>The caller's handle on the current use.</summary>
    public ValueTask<TResult> Pending => new(this, _core.Version);

    protected void SetResult(TResult result) => _core.SetResult(result);

    protected void SetException(Exception error) => _core.SetException(error);

    /// <summary>
    /// Called once the result (or exception) of a use has been handed to the caller and the source was reset:
    /// from here it may be used again, so this is where it returns to its free list.
    /// </summary>
    protected abstract void OnResultTaken();

    public TResult GetResult(short token)
    {
        // A stale token (a ValueTask awaited twice) or an unfinished use throws here, before anything is recycled.
        if (_core.GetStatus(token) == ValueTaskSourceStatus.Pending)
        {
            throw new InvalidOperationException("The operation has not completed.");
        }
        try
        {
            return _core.GetResult(token);
        }
        finally
        {
            _core.Reset();
            OnResultTaken();
        }
    }

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
