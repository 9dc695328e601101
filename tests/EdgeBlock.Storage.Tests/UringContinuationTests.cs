using System.Diagnostics;
using EdgeBlock.Storage.Tests.Support;

namespace EdgeBlock.Storage.Tests;

/// <summary>
/// Where the io_uring engine runs callers' continuations: on its ring thread, except for a back-off period after
/// one of them was slow; then on the ring thread again. Each read is issued from a pool thread and awaited only
/// when still pending, so its continuation
/// really is one the ring runs; a read that is already complete tells nothing and is simply retried.
/// Without io_uring (old kernel, seccomp) there is nothing to check: the tests return.
/// </summary>
public sealed class UringContinuationTests : IDisposable
{
    private const int MiB = 1024 * 1024;
    /// <summary>Bounds every wait for an outcome that must come; generous, so a loaded machine cannot fail them.</summary>
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);
    private static readonly long Millisecond = Stopwatch.Frequency / 1000;
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    /// <summary>Where a read's continuation ran.</summary>
    private enum Ran { Synchronously, OnRing, OnPool }

    /// <summary>
    /// One read from a pool thread. When its continuation runs on the ring thread, <paramref name="onRing"/> runs
    /// there too (inside the continuation, so the ring times it). Returns on a pool thread once the ring has
    /// finished with the completion (timed it, and started a back-off if it was slow): the test's next steps
    /// (moving the manual clock) must not fall inside the ring's timing of this continuation.
    /// </summary>
    private static async Task<Ran> ReadAsync(FileBlockDevice device, AlignedBuffer buffer, Action? onRing = null)
    {
        UringFileIo uring = device.Uring!;
        // Completed with RunContinuationsAsynchronously: this method never resumes on the ring thread.
        var result = new TaskCompletionSource<(Ran, long)>(TaskCreationOptions.RunContinuationsAsynchronously);
        _ = Task.Run(async () =>
        {
            try
            {
                result.SetResult(await ReadFromPoolAsync(device, buffer, onRing).ConfigureAwait(false));
            }
            catch (Exception exception)
            {
                result.SetException(exception);
            }
        });
        (Ran ran, long inlineBefore) = await result.Task;
        if (ran == Ran.OnRing)
        {
            var patience = Stopwatch.StartNew();
            while (Volatile.Read(ref uring.InlineCompletions) <= inlineBefore)
            {
                Assert.True(patience.Elapsed < Patience, "the ring thread did not finish a completion");
                Thread.Sleep(1);
            }
        }
        return ran;
    }

    /// <summary>The read itself, on a pool thread: where its continuation ran, and the ring's inline count before it was counted.</summary>
    private static async Task<(Ran, long)> ReadFromPoolAsync(FileBlockDevice device, AlignedBuffer buffer, Action? onRing)
    {
        UringFileIo uring = device.Uring!;
        ValueTask<BlockStatus> read = device.ReadAsync(0, buffer.Memory);
        if (read.IsCompleted)
        {
            Assert.Equal(BlockStatus.Success, read.Result);
            return (Ran.Synchronously, 0L);
        }
        BlockStatus status = await read.ConfigureAwait(false);
        // On the ring thread, the ring counts this completion only once the continuation has returned.
        long counted = Volatile.Read(ref uring.InlineCompletions);
        bool ring = uring.OnRingThread;
        if (ring) onRing?.Invoke();
        Assert.Equal(BlockStatus.Success, status);
        return (ring ? Ran.OnRing : Ran.OnPool, counted);
    }

    /// <summary>Reads until one's continuation runs on the ring thread (running <paramref name="onRing"/> there); false on timeout.</summary>
    private static async Task<bool> ReadUntilOnRingAsync(FileBlockDevice device, AlignedBuffer buffer, Action? onRing = null, int pauseMs = 0)
    {
        var patience = Stopwatch.StartNew();
        while (patience.Elapsed < Patience)
        {
            if (await ReadAsync(device, buffer, onRing) == Ran.OnRing) return true;
            if (pauseMs > 0) await Task.Delay(pauseMs);
        }
        return false;
    }

    private async Task<FileBlockDevice?> OpenAsync(string name)
    {
        FileBlockDevice device = FileBlockDevice.Open(_directory.File(name), 4 * MiB, 512, preferDirectIo: true, FileIoEngine.Auto);
        if (device.UsesIoUring) return device;
        await device.DisposeAsync();
        return null;
    }

    /// <summary>A clock that only moves when told to: every decision of the ring is then deterministic.</summary>
    private sealed class ManualClock
    {
        private long _now = 1_000_000 * Stopwatch.Frequency;

        public long Now => Volatile.Read(ref _now);

        public void Advance(long ticks) => Interlocked.Add(ref _now, ticks);
    }

    /// <summary>
    /// A manual clock: nothing is slow unless a continuation advances the clock, and the back-off ends exactly
    /// when the clock reaches it. Checks the first back-off, its growth when a slow continuation comes right
    /// after it, and its reset after a fast period.
    /// </summary>
    [Fact]
    public async Task SlowContinuation_ManualClock_PoolDuringBackOff_RingAgainAfter_BackOffGrowsAndResets()
    {
        FileBlockDevice? opened = await OpenAsync("manual.img");
        if (opened is null) return;
        await using FileBlockDevice device = opened;
        UringFileIo uring = device.Uring!;
        var clock = new ManualClock();
        uring.Clock = () => clock.Now;
        long backOff = 100 * Millisecond;
        uring.BackOffTicks = backOff;
        using var buffer = new AlignedBuffer(4096);

        // (1) Inline to begin with.
        Assert.True(await ReadUntilOnRingAsync(device, buffer), "no continuation ran on the ring thread");

        // (2) A continuation that takes 5 ms (of the ring's clock): back-off of 100 ms from its end.
        Assert.True(await ReadUntilOnRingAsync(device, buffer, () => clock.Advance(5 * Millisecond)), "the slow continuation never ran on the ring");

        // (3) During the back-off, to its last tick, every continuation runs on the pool.
        await AssertOnPoolAsync(device, buffer);
        clock.Advance(backOff - 1);
        await AssertOnPoolAsync(device, buffer);

        // (4) Back-off over: on the ring thread again.
        clock.Advance(1);
        Assert.True(await ReadUntilOnRingAsync(device, buffer), "continuations did not go back to the ring thread after the back-off");

        // Slow again right after: the back-off doubles.
        Assert.True(await ReadUntilOnRingAsync(device, buffer, () => clock.Advance(5 * Millisecond)));
        clock.Advance(2 * backOff - 1);
        await AssertOnPoolAsync(device, buffer);
        clock.Advance(1);
        Assert.True(await ReadUntilOnRingAsync(device, buffer), "continuations did not go back to the ring thread after the doubled back-off");

        // Repeatedly slow: capped at ten times the first.
        for (int i = 0; i < 5; i++)
        {
            Assert.True(await ReadUntilOnRingAsync(device, buffer, () => clock.Advance(5 * Millisecond)));
            clock.Advance(Math.Min(backOff << (i + 2), 10 * backOff));
        }
        Assert.True(await ReadUntilOnRingAsync(device, buffer, () => clock.Advance(5 * Millisecond)));
        clock.Advance(10 * backOff - 1);
        await AssertOnPoolAsync(device, buffer);
        clock.Advance(1);
        Assert.True(await ReadUntilOnRingAsync(device, buffer));

        // After a fast period longer than the back-off, a slow continuation starts from the first back-off again.
        clock.Advance(20 * backOff);
        Assert.True(await ReadUntilOnRingAsync(device, buffer, () => clock.Advance(5 * Millisecond)));
        clock.Advance(backOff - 1);
        await AssertOnPoolAsync(device, buffer);
        clock.Advance(1);
        Assert.True(await ReadUntilOnRingAsync(device, buffer));
    }

    /// <summary>
    /// The real clock and a continuation that really blocks (5 ms) on the ring thread, with a 50 ms back-off.
    /// How long the machine takes cannot fail it: a continuation on the ring thread must simply not come
    /// before the back-off ended, and the return to the ring thread is awaited for seconds.
    /// </summary>
    [Fact]
    public async Task BlockingContinuation_RealClock_LeavesTheRingForTheBackOffOnly()
    {
        FileBlockDevice? opened = await OpenAsync("real.img");
        if (opened is null) return;
        await using FileBlockDevice device = opened;
        long backOff = 50 * Millisecond;
        device.Uring!.BackOffTicks = backOff;
        using var buffer = new AlignedBuffer(4096);

        // (1) Inline to begin with (a preempted continuation may start a back-off: polled past it).
        Assert.True(await ReadUntilOnRingAsync(device, buffer, pauseMs: 5), "no continuation ran on the ring thread");

        // (2) A continuation blocks the ring thread for 5 ms; the ring's back-off ends 50 ms after it at the earliest.
        long blockedUntil = 0;
        Assert.True(await ReadUntilOnRingAsync(device, buffer, () =>
        {
            Thread.Sleep(5);
            Volatile.Write(ref blockedUntil, Stopwatch.GetTimestamp());
        }, pauseMs: 5), "the blocking continuation never ran on the ring");
        long backOffEnds = Volatile.Read(ref blockedUntil) + backOff;

        // (3) No continuation on the ring thread before the back-off ended (the ring decides when it reaps the
        // completion, before the continuation runs, so one that runs there must see the back-off over).
        while (Stopwatch.GetTimestamp() < backOffEnds)
        {
            long ranAt = 0;
            if (await ReadAsync(device, buffer, () => ranAt = Stopwatch.GetTimestamp()) == Ran.OnRing)
            {
                Assert.True(ranAt >= backOffEnds,
                    $"a continuation ran on the ring thread {(double)(backOffEnds - ranAt) / Millisecond:F1} ms before the back-off ended");
            }
        }

        // (4) Then on the ring thread again.
        Assert.True(await ReadUntilOnRingAsync(device, buffer, pauseMs: 5), "continuations did not go back to the ring thread after the back-off");
    }

    /// <summary>
    /// A continuation on the ring thread that issues its next request (as a chunk volume's write follows its read)
    /// gets it served by the ring, not by a blocking call on the thread pool, and the request reads the right data.
    /// One that then waits for it synchronously would wait forever for the ring thread to submit it: the watchdog
    /// hands it to the thread pool, and the wait ends.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task RequestFromRingContinuation_AwaitedRunsOnTheRing_WaitedForSynchronouslyIsRescued(bool waitSynchronously)
    {
        FileBlockDevice? opened = await OpenAsync($"own-{waitSynchronously}.img");
        if (opened is null) return;
        await using FileBlockDevice device = opened;
        UringFileIo uring = device.Uring!;
        using var buffer = new AlignedBuffer(4096);
        using var pattern = new AlignedBuffer(8192);
        using var readBack = new AlignedBuffer(8192);
        DataPattern.Fill(pattern.Span, 64 * 512L, seed: 5);
        Assert.Equal(BlockStatus.Success, await device.WriteAsync(64, pattern.Memory, fua: false));

        Task<BlockStatus>? next = null;
        Assert.True(await ReadUntilOnRingAsync(device, buffer, () =>
        {
            if (next is not null) return;
            next = device.ReadAsync(64, readBack.Memory).AsTask();
            if (waitSynchronously) Assert.True(next.Wait(Patience), "the synchronous wait on the ring thread was never served");
        }), "no continuation ran on the ring thread");

        Assert.Equal(BlockStatus.Success, await next!);
        DataPattern.AssertMatches(readBack.Span, 64 * 512L, seed: 5);
        Assert.Equal(1, Volatile.Read(ref uring.OwnSubmissions));
        Assert.Equal(waitSynchronously ? 1 : 0, Interlocked.Read(ref uring.Rescued));
    }

    /// <summary>Five reads whose continuations run on the pool (reads complete before they are awaited do not count); none on the ring.</summary>
    private static async Task AssertOnPoolAsync(FileBlockDevice device, AlignedBuffer buffer)
    {
        var patience = Stopwatch.StartNew();
        int onPool = 0;
        while (onPool < 5 && patience.Elapsed < Patience)
        {
            Ran ran = await ReadAsync(device, buffer);
            Assert.NotEqual(Ran.OnRing, ran);
            if (ran == Ran.OnPool) onPool++;
        }
        Assert.Equal(5, onPool);
    }
}
