using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using EdgeBlock.Initiator;
using EdgeBlock.Nvme;

namespace EdgeBlock.Cli;

/// <summary>
/// Drives a namespace over the .NET NVMe/TCP host: QD workers per I/O queue, each an async loop that keeps one
/// command in flight with its own preallocated buffer. Completions run inline on each queue's receive loop, so a
/// worker's next command is formatted right there and nothing in the loop blocks or allocates.
/// </summary>
internal sealed class BenchRunner
{
    private const int BufferAlignment = 4096;

    private readonly BenchOptions _o;
    private readonly TextWriter? _progress;
    private NvmeController _controller = null!;
    private BenchWorker[] _workers = [];
    private int _lbaSize;
    private int _blocksPerIo;
    private ulong _seed;

    public BenchRunner(BenchOptions options, TextWriter? progress)
    {
        _o = options;
        _progress = progress;
    }

    /// <summary>Runs the whole bench. Throws IOException/InvalidOperationException with a message a user can act on when it cannot start.</summary>
    public async Task<BenchResult> RunAsync(CancellationToken cancellationToken)
    {
        _seed = _o.Seed ?? (ulong)Random.Shared.NextInt64(1, long.MaxValue);
        string hostNqn = _o.HostNqn ?? NvmeHost.HostNqnFromId(Guid.NewGuid());
        var connectOptions = new NvmeConnectOptions
        {
            InlineCompletions = true,
            DisableSqFlowControl = false,
            DhchapSecret = _o.DhchapSecret,
            DhchapControllerSecret = _o.DhchapControllerSecret,
        };
        var connected = await NvmeHost.ConnectAsync(_o.Host, _o.Port, _o.SubsystemNqn, hostNqn, ioQueues: _o.Queues,
            queueSize: _o.QueueDepth + 1, headerDigest: _o.HeaderDigest, dataDigest: _o.DataDigest,
            options: connectOptions, cancellationToken: cancellationToken).ConfigureAwait(false);
        if (connected.Controller is not { } controller)
            throw new InvalidOperationException($"cannot connect to {_o.SubsystemNqn} at {_o.Host}:{_o.Port}: {connected.FailedStep} failed with {BenchReport.StatusName((ushort)(connected.Status.ToField() & 0x3FFE))}");
        _controller = controller;
        await using (controller.ConfigureAwait(false))
        {
            return await RunConnectedAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<BenchResult> RunConnectedAsync(CancellationToken ct)
    {
        if (_controller.IoQueues.Count < _o.Queues)
            throw new InvalidOperationException($"the controller granted {_controller.IoQueues.Count} I/O queues, --queues asked for {_o.Queues}");
        if (_o.BlockSize > _controller.MaxTransferBytes)
            throw new InvalidOperationException($"--bs {_o.BlockSize} is above the controller's MDTS ({_controller.MaxTransferBytes} bytes per command)");
        var ns = await _controller.IdentifyNamespaceAsync(_o.Nsid).ConfigureAwait(false);
        if (!ns.IsSuccess || ns.Value is not { IsActive: true } info)
            throw new InvalidOperationException($"namespace {_o.Nsid} of {_o.SubsystemNqn} is not active (Identify Namespace: {ns.Status})");
        _lbaSize = info.BlockSize;
        if (_o.BlockSize % _lbaSize != 0)
            throw new InvalidOperationException($"--bs {_o.BlockSize} is not a multiple of the namespace's {_lbaSize}-byte blocks");
        _blocksPerIo = _o.BlockSize / _lbaSize;

        long nsBytes = info.Nsze * _lbaSize;
        long range = _o.SizeLimit > 0 ? Math.Min(_o.SizeLimit, nsBytes) : _o.Verify ? Math.Min(BenchOptions.DefaultVerifyRange, nsBytes) : nsBytes;
        range -= range % _o.BlockSize;
        if (range < _o.BlockSize)
            throw new InvalidOperationException($"namespace {_o.Nsid} holds {nsBytes} bytes, less than one {_o.BlockSize}-byte I/O");

        AllocateWorkers();

        BenchVerifyResult? verify = null;
        if (_o.Verify)
        {
            var fill = NewPhase("verify: writing the pattern", BenchPattern.Write, range, onePass: true, verifyReads: false);
            await RunUntimedAsync(fill, ct).ConfigureAwait(false);
            ThrowIfFailed(fill);
        }

        var main = NewPhase(BenchOptions.PatternName(_o.Pattern), _o.Pattern, range, onePass: false,
            verifyReads: _o.Verify && !_o.HasWrites, ioLimit: _o.IoLimit, pace: _o.PacePerSlot);
        var window = await RunTimedAsync(main, ct).ConfigureAwait(false);

        if (_o.Verify && main.Failure == null)
        {
            // Reads during a mixed phase could race writes to the same block; the read-back after all writes cannot.
            if (_o.HasWrites)
            {
                var readBack = NewPhase("verify: reading back", BenchPattern.Read, range, onePass: true, verifyReads: true);
                await RunUntimedAsync(readBack, ct).ConfigureAwait(false);
                ThrowIfFailed(readBack);
            }
            long mismatches = 0, checkedBlocks = 0;
            var details = new List<string>();
            foreach (var w in _workers)
            {
                mismatches += w.Mismatches;
                checkedBlocks += w.VerifiedBlocks;
                foreach (string d in w.MismatchDetails) if (details.Count < BenchWorker.MaxMismatchDetails) details.Add(d);
            }
            verify = new BenchVerifyResult(checkedBlocks, mismatches, details);
        }
        return BuildResult(main, window, range, verify);
    }

    private void AllocateWorkers()
    {
        int count = _o.Queues * _o.QueueDepth;
        // One pinned array for every slot's buffer, each slot starting on a 4 KiB boundary.
        long stride = (_o.BlockSize + BufferAlignment - 1) / BufferAlignment * BufferAlignment;
        var backing = GC.AllocateUninitializedArray<byte>(checked((int)(stride * count + BufferAlignment)), pinned: true);
        int skew = (int)(BufferAlignment - (AddressOf(backing) % BufferAlignment)) % BufferAlignment;
        _workers = new BenchWorker[count];
        for (int i = 0; i < count; i++)
        {
            var buffer = backing.AsMemory(skew + (int)(i * stride), _o.BlockSize);
            buffer.Span.Clear();
            _workers[i] = new BenchWorker(i, (ushort)(i % _o.Queues + 1), buffer, _seed);
        }
    }

    private static unsafe nint AddressOf(byte[] pinned) => (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(pinned));

    private BenchPhase NewPhase(string name, BenchPattern pattern, long range, bool onePass, bool verifyReads, long ioLimit = 0,
        TimeSpan pace = default) =>
        new(name, pattern, _o.ReadMixPercent, range, _o.BlockSize, _o.Queues, onePass, ioLimit,
            verifyReads, patternWrites: _o.Verify, pace);

    private static void ThrowIfFailed(BenchPhase phase)
    {
        if (phase.Failure is { } f) throw new IOException($"{phase.Name}: {f.Message}", f);
    }

    private Task[] StartWorkers(BenchPhase phase)
    {
        var tasks = new Task[_workers.Length];
        for (int i = 0; i < _workers.Length; i++) tasks[i] = WorkerLoopAsync(_workers[i], phase);
        return tasks;
    }

    /// <summary>One pass (fill or read-back): everything counts toward nothing but errors and verification.</summary>
    private async Task RunUntimedAsync(BenchPhase phase, CancellationToken ct)
    {
        var all = Task.WhenAll(StartWorkers(phase));
        var clock = Stopwatch.StartNew();
        long last = TotalCompleted();
        while (!all.IsCompleted)
        {
            var tick = Task.Delay(TimeSpan.FromSeconds(1), CancellationToken.None);
            await Task.WhenAny(all, tick).ConfigureAwait(false);
            if (ct.IsCancellationRequested) phase.Stop();
            if (!tick.IsCompleted) continue;
            long now = TotalCompleted();
            Progress($"[{clock.Elapsed.TotalSeconds,5:F0}s] {phase.Name}: {(now - last) * (long)_o.BlockSize / 1e6,8:N1} MB/s");
            last = now;
        }
        ClearProgress();
        await all.ConfigureAwait(false);
        if (ct.IsCancellationRequested) throw new OperationCanceledException(ct);
    }

    private readonly record struct Window(long Start, long End, long ServerTicksBefore, long ServerTicksAfter, TimeSpan ClientBefore, TimeSpan ClientAfter, long AllocatedBytes);

    /// <summary>Ramp, then the measured window: CPU snapshots at its edges, a progress line every second.</summary>
    private async Task<Window> RunTimedAsync(BenchPhase phase, CancellationToken ct)
    {
        var tasks = StartWorkers(phase);
        var all = Task.WhenAll(tasks);
        long rampEnd = Stopwatch.GetTimestamp() + (long)(_o.Ramp.TotalSeconds * Stopwatch.Frequency);
        long start = 0, end = long.MaxValue;
        long serverBefore = 0, serverAfter = 0;
        TimeSpan clientBefore = default, clientAfter = default;
        long allocatedBefore = 0, allocatedAfter = 0;
        bool open = false;
        long runStart = Stopwatch.GetTimestamp();
        long lastCount = TotalCompleted(), lastStamp = runStart, nextPrint = lastStamp + Stopwatch.Frequency;
        while (true)
        {
            long now = Stopwatch.GetTimestamp();
            if (!open && (now >= rampEnd || all.IsCompleted))
            {
                open = true;
                foreach (var w in _workers) w.ResetWindowCounters();
                clientBefore = ProcessCpu.Self();
                allocatedBefore = GC.GetTotalAllocatedBytes();
                if (_o.ServerPid is { } pid) ProcessCpu.TryReadTicks(pid, out serverBefore);
                start = Stopwatch.GetTimestamp();
                phase.OpenWindow(start);
                end = start + (long)(_o.Duration.TotalSeconds * Stopwatch.Frequency);
            }
            if (open && (now >= end || all.IsCompleted || ct.IsCancellationRequested || phase.Stopping))
            {
                // The window ends now, not at the planned end: what completed until now was counted.
                end = Stopwatch.GetTimestamp();
                phase.CloseWindow(end);
                clientAfter = ProcessCpu.Self();
                allocatedAfter = GC.GetTotalAllocatedBytes();
                if (_o.ServerPid is { } pid) ProcessCpu.TryReadTicks(pid, out serverAfter);
                break;
            }
            if (!open && (ct.IsCancellationRequested || phase.Stopping)) break;
            if (now >= nextPrint)
            {
                long count = TotalCompleted();
                double iops = (count - lastCount) * (double)Stopwatch.Frequency / (now - lastStamp);
                double elapsed = (now - runStart) / (double)Stopwatch.Frequency;
                Progress($"[{elapsed,5:F0}s{(open ? "" : " ramp")}] {BenchOptions.PatternName(_o.Pattern)}: {iops,10:N0} IOPS {iops * _o.BlockSize / 1e6,9:N1} MB/s");
                lastCount = count;
                lastStamp = now;
                nextPrint = now + Stopwatch.Frequency;
            }
            await Task.WhenAny(all, Task.Delay(TimeSpan.FromMilliseconds(100), CancellationToken.None)).ConfigureAwait(false);
        }
        phase.Stop();
        ClearProgress();
        // Outstanding commands finish (the target answers them); a dead connection already failed them.
        if (await Task.WhenAny(all, Task.Delay(TimeSpan.FromSeconds(30), CancellationToken.None)).ConfigureAwait(false) != all)
            phase.Fail(new TimeoutException("commands still outstanding 30 s after the run ended"));
        if (!open) start = end = Stopwatch.GetTimestamp();
        return new Window(start, end, serverBefore, serverAfter, clientBefore, clientAfter, allocatedAfter - allocatedBefore);
    }

    private async Task WorkerLoopAsync(BenchWorker w, BenchPhase phase)
    {
        var controller = _controller;
        uint nsid = _o.Nsid;
        int blocks = _blocksPerIo, lbaSize = _lbaSize, ioBytes = _o.BlockSize;
        int compressible = _o.Compressible ?? 0;
        var buffer = w.Buffer;
        using var pacer = phase.Pace > TimeSpan.Zero ? new PeriodicTimer(phase.Pace) : null;
        // Paced slots start spread over one period, so QD slots do not send in bursts of QD.
        if (pacer != null && w.Index > 0) await Task.Delay(phase.Pace * w.Index / _workers.Length).ConfigureAwait(false);
        while (!phase.Stopping)
        {
            if (pacer != null && !await pacer.WaitForNextTickAsync().ConfigureAwait(false)) break;
            if (!phase.TryNext(w, out long offset, out bool read)) break;
            ulong slba = (ulong)(offset / lbaSize);
            if (!read && phase.PatternWrites) VerifyBlock.Fill(buffer.Span, lbaSize, slba, _seed, (ulong)w.Index << 40 | ++w.Generation);
            else if (!read && compressible != 0) CompressibleData.Fill(buffer.Span, compressible, w.NextRandom());
            long t0 = Stopwatch.GetTimestamp();
            NvmeCompletion c;
            try
            {
                c = read
                    ? await controller.ReadAsync(nsid, slba, blocks, buffer, w.Qid).ConfigureAwait(false)
                    : await controller.WriteAsync(nsid, slba, blocks, buffer, qid: w.Qid).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException)
            {
                phase.Fail(ex);
                break;
            }
            long t1 = Stopwatch.GetTimestamp();
            w.Completed++;
            if (!c.IsSuccess) w.AddError(c.Status);
            else if (read && phase.VerifyReads) w.VerifyRead(buffer.Span, lbaSize, slba);
            if (t1 < phase.WindowStart || t1 >= phase.WindowEnd) continue;
            if (read)
            {
                w.ReadLatency.Record(t1 - t0);
                w.ReadIos++;
                w.ReadBytes += ioBytes;
            }
            else
            {
                w.WriteLatency.Record(t1 - t0);
                w.WriteIos++;
                w.WriteBytes += ioBytes;
            }
        }
    }

    private long TotalCompleted()
    {
        long sum = 0;
        foreach (var w in _workers) sum += Volatile.Read(ref w.Completed);
        return sum;
    }

    private bool _progressShown;

    private void Progress(string line)
    {
        if (_progress == null) return;
        _progress.Write($"\r{line}\u001b[K");
        _progress.Flush();
        _progressShown = true;
    }

    private void ClearProgress()
    {
        if (_progress == null || !_progressShown) return;
        _progress.Write("\r\u001b[K");
        _progress.Flush();
        _progressShown = false;
    }

    private BenchResult BuildResult(BenchPhase phase, Window window, long range, BenchVerifyResult? verify)
    {
        double seconds = Math.Max(window.End - window.Start, 1) / (double)Stopwatch.Frequency;
        var readLatency = new LatencyHistogram();
        var writeLatency = new LatencyHistogram();
        var all = new LatencyHistogram();
        long readIos = 0, writeIos = 0, readBytes = 0, writeBytes = 0;
        var errors = new SortedDictionary<string, long>(StringComparer.Ordinal);
        long errorCount = 0;
        foreach (var w in _workers)
        {
            readLatency.Add(w.ReadLatency);
            writeLatency.Add(w.WriteLatency);
            readIos += w.ReadIos;
            writeIos += w.WriteIos;
            readBytes += w.ReadBytes;
            writeBytes += w.WriteBytes;
            foreach (var (field, count) in w.Errors)
            {
                string name = BenchReport.StatusName(field);
                errors[name] = errors.GetValueOrDefault(name) + count;
                errorCount += count;
            }
        }
        all.Add(readLatency);
        all.Add(writeLatency);
        long ios = readIos + writeIos, bytes = readBytes + writeBytes;

        BenchDirectionResult Direction(long n, long b, LatencyHistogram h) => new(n, b, n / seconds, b / seconds / 1e6, h.Summarize());
        double clientCpu = (window.ClientAfter - window.ClientBefore).TotalSeconds;
        BenchCpuResult? server = null;
        if (_o.ServerPid is { } pid)
        {
            double serverCpu = (window.ServerTicksAfter - window.ServerTicksBefore) / (double)ProcessCpu.ClockTicksPerSecond;
            server = new BenchCpuResult(pid, serverCpu, ios == 0 ? 0 : serverCpu * 1e6 / ios, serverCpu / seconds, ProcessCpu.ClockTicksPerSecond);
        }
        return new BenchResult
        {
            Addr = $"{_o.Host}:{_o.Port}",
            Nqn = _o.SubsystemNqn,
            Nsid = _o.Nsid,
            Rw = BenchOptions.PatternName(_o.Pattern),
            RwmixRead = _o.Pattern == BenchPattern.RandRw ? _o.ReadMixPercent : null,
            BlockSize = _o.BlockSize,
            IoDepth = _o.QueueDepth,
            Queues = _o.Queues,
            LbaSize = _lbaSize,
            RangeBytes = range,
            Digest = (_o.HeaderDigest, _o.DataDigest) switch { (true, true) => "header,data", (true, false) => "header", (false, true) => "data", _ => "none" },
            RampSeconds = _o.Ramp.TotalSeconds,
            Compressible = _o.Compressible,
            Seconds = seconds,
            Ios = ios,
            RunIos = TotalCompleted(),
            Bytes = bytes,
            Iops = ios / seconds,
            MBps = bytes / seconds / 1e6,
            MiBps = bytes / seconds / (1 << 20),
            LatencyUs = all.Summarize(),
            Read = readIos > 0 ? Direction(readIos, readBytes, readLatency) : null,
            Write = writeIos > 0 ? Direction(writeIos, writeBytes, writeLatency) : null,
            ErrorCount = errorCount,
            Errors = errors,
            TransportError = phase.Failure?.Message,
            Verify = verify,
            ClientCpu = new BenchCpuResult(null, clientCpu, ios == 0 ? 0 : clientCpu * 1e6 / ios, clientCpu / seconds, null),
            ClientAllocatedBytesPerIo = ios == 0 ? 0 : window.AllocatedBytes / (double)ios,
            ServerCpu = server,
        };
    }
}
