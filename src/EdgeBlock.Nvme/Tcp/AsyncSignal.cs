using System.Threading.Tasks.Sources;

namespace EdgeBlock.Nvme.Tcp;

/// <summary>
/// An auto-reset signal for exactly one waiter (an NVMe/TCP send loop, host or target side) that many producers set.
/// Built on ManualResetValueTaskSourceCore so that waiting does not allocate, unlike SemaphoreSlim.WaitAsync.
/// </summary>
public sealed class AsyncSignal : IValueTaskSource
{
    private ManualResetValueTaskSourceCore<bool> _core = new() { RunContinuationsAsynchronously = true };
    private readonly object _gate = new();
    private bool _set;
    private bool _waiting;

    /// <summary>Wakes the waiter, or makes its next wait return at once.</summary>
    public void Set()
    {
        lock (_gate)
        {
            if (_waiting)
            {
                _waiting = false;
                _core.SetResult(true);
                return;
            }
            _set = true;
        }
    }

    public ValueTask WaitAsync()
    {
        lock (_gate)
        {
            if (_set)
            {
                _set = false;
                return ValueTask.CompletedTask;
            }
            _core.Reset();
            _waiting = true;
            return new ValueTask(this, _core.Version);
        }
    }

    void IValueTaskSource.GetResult(short token) => _core.GetResult(token);
    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _core.GetStatus(token);
    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
