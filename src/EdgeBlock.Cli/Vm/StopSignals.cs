using System.Runtime.InteropServices;

namespace EdgeBlock.Cli.Vm;

/// <summary>
/// Ctrl-C and SIGTERM while a VM runs: the first asks for a clean stop, the second for a quick one.
/// Registered for the whole `vm run`, so a signal during set-up still tears down what was created.
/// </summary>
internal sealed class StopSignals : IDisposable
{
    private readonly PosixSignalRegistration _int, _term;
    private readonly TaskCompletionSource _first = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _second = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _cancel = new();
    private int _count;

    public StopSignals()
    {
        _int = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        _term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
    }

    public Task First => _first.Task;
    public Task Second => _second.Task;

    /// <summary>Cancelled by the first signal.</summary>
    public CancellationToken Token => _cancel.Token;

    private void OnSignal(PosixSignalContext context)
    {
        context.Cancel = true; // we stop QEMU and tear down ourselves
        if (Interlocked.Increment(ref _count) == 1)
        {
            _first.TrySetResult();
            _cancel.Cancel();
        }
        else
        {
            _second.TrySetResult();
        }
    }

    public void Dispose()
    {
        _int.Dispose();
        _term.Dispose();
        _cancel.Dispose();
    }
}
