using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using EdgeBlock.Nvme.Tcp;
using EdgeBlock.Storage;
using EdgeBlock.Target;

namespace EdgeBlock.Transports.Tcp;

/// <summary>
/// Data buffers under the daemon's memory budget (issue H). A command rents its buffer when data must move and
/// waits when the budget is spent, in one of two ways:
/// <list type="bullet">
/// <item>Commands whose data is not in the capsule (R2T writes, reads) are <em>parked</em>: the receive loop goes
/// on, and the parked ones get their buffer in arrival order when buffers come back (R2T later, device read later).
/// They rent only while <see cref="ParkedKeepFreeBytes"/> stay unused.</item>
/// <item>A capsule with in-capsule data must be copied out before the receive loop can go past it: the loop
/// stops reading (TCP flow control then stops the host) until a buffer comes back.</item>
/// </list>
/// Why the reserve: a write holds its buffer until the host sends its data, which arrives on this queue's receive
/// loop. If parked renters could take the whole budget, receive loops stopped on in-capsule data could wait for
/// buffers that only they could free. With the reserve, what such a loop waits for is held by commands that finish
/// on their own (reads, writes inside the device), so a queue can always finish what it started.
/// </summary>
internal sealed partial class TcpQueue : IBufferWaiter, IThreadPoolWorkItem
{
    /// <summary>Tags of parked commands, in arrival order; only the server of the queue dequeues.</summary>
    private readonly ConcurrentQueue<int> _parked = new();
    private readonly AsyncSignal _bufferSignal = new();
    /// <summary>The receive loop stopped at a capsule whose in-capsule data has no buffer yet.</summary>
    private volatile bool _receiveBlocked;
    private int _waitRegistered;
    private int _wakeQueued;
    private int _serving;
    private int _serveRequested;

    /// <summary>Budget parked renters leave unused: the largest in-capsule data, so a stopped receive loop can go on.</summary>
    private long ParkedKeepFreeBytes => DataBufferPool.ClassBytes(Math.Max(Target.Limits.InCapsuleDataBytes, Target.Limits.AdminInCapsuleDataBytes));

    /// <summary>A buffer for in-capsule data; false: the receive loop must stop here and retry when woken.</summary>
    private bool TryRentInCapsule(int length, [NotNullWhen(true)] out AlignedBuffer? buffer)
    {
        if (_buffers.TryRent(length, 0, out buffer)) return true;
        // Blocked before registering: a wake-up between the two must find the flag set.
        _receiveBlocked = true;
        RegisterWait();
        if (!_buffers.TryRent(length, 0, out buffer)) return false;
        _receiveBlocked = false;
        return true;
    }

    /// <summary>
    /// Gives a parsed command whose data is not in the capsule its buffer and starts its transfer, or parks it
    /// behind those already waiting (first come, first served: a 128 KiB command is not overtaken forever).
    /// </summary>
    private void StartOrPark(TcpCommand cmd)
    {
        if (_parked.IsEmpty && _buffers.TryRent(cmd.Request.DataLength, ParkedKeepFreeBytes, out var buffer))
        {
            cmd.AttachBuffer(buffer);
            StartTransfer(cmd);
            return;
        }
        cmd.State = TcpCommandState.AwaitingBuffer;
        _parked.Enqueue(cmd.Request.Tag);
        ServeParked();
    }

    /// <summary>Data buffer in place: ask for the host's data with one R2T, or run the command (reads).</summary>
    private void StartTransfer(TcpCommand cmd)
    {
        if (cmd.Request.Direction == DataDirection.HostToController)
        {
            // One R2T covers the whole transfer (it fits MAXH2CDATA).
            cmd.H2CReceived = 0;
            cmd.DataDigestFailed = false;
            cmd.State = TcpCommandState.AwaitingH2CData;
            Interlocked.Increment(ref _awaitingData);
            QueueSend(SendKind.R2T, cmd);
            return;
        }
        Execute(cmd);
    }

    /// <summary>Starts parked commands while the budget allows; one thread at a time, whoever asks last is served.</summary>
    private void ServeParked()
    {
        Interlocked.Exchange(ref _serveRequested, 1);
        while (Volatile.Read(ref _serveRequested) != 0 && Interlocked.CompareExchange(ref _serving, 1, 0) == 0)
        {
            Interlocked.Exchange(ref _serveRequested, 0);
            ServeParkedOnce();
            Volatile.Write(ref _serving, 0);
        }
    }

    private void ServeParkedOnce()
    {
        while (!IsClosed && _parked.TryPeek(out int tag))
        {
            var cmd = _slots[tag]!;
            int length = cmd.Request.DataLength;
            if (!_buffers.TryRent(length, ParkedKeepFreeBytes, out var buffer))
            {
                RegisterWait();
                if (!_buffers.TryRent(length, ParkedKeepFreeBytes, out buffer)) return;
            }
            _parked.TryDequeue(out _);
            cmd.AttachBuffer(buffer);
            StartTransfer(cmd);
        }
    }

    /// <summary>At close: waits out a server at work and keeps the role, so nothing rents for this queue again.</summary>
    private void StopServingParked()
    {
        var spin = new SpinWait();
        while (Interlocked.CompareExchange(ref _serving, 1, 0) != 0) spin.SpinOnce();
    }

    private void RegisterWait()
    {
        if (Interlocked.Exchange(ref _waitRegistered, 1) == 0) _buffers.AddWaiter(this);
    }

    /// <summary>On the returning thread (another queue's writer, a device's completion): retry on the thread pool.</summary>
    void IBufferWaiter.OnBuffersReturned()
    {
        Volatile.Write(ref _waitRegistered, 0);
        if (Interlocked.Exchange(ref _wakeQueued, 1) == 0) ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
    }

    void IThreadPoolWorkItem.Execute()
    {
        Volatile.Write(ref _wakeQueued, 0);
        if (_receiveBlocked) _bufferSignal.Set();
        if (!_parked.IsEmpty) ServeParked();
    }

    /// <summary>Receive loop: waits until a stopped capsule may get its buffer. False: the queue closed meanwhile.</summary>
    private async ValueTask<bool> WaitForInCapsuleBufferAsync()
    {
        await _bufferSignal.WaitAsync().ConfigureAwait(false);
        _receiveBlocked = false;
        return !IsClosed;
    }
}
