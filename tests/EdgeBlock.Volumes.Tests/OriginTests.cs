using EdgeBlock.Storage;

namespace EdgeBlock.Volumes.Tests;

/// <summary>
/// Volumes attached to an origin (image attach): reads through the origin, writes and discards resolving blocks,
/// the background copy, its persistence across a crash, and the refusals. The origin is an in-memory
/// <see cref="IVolumeOrigin"/> (the pool's own interface; the qemu-img made images are the daemon tests').
/// </summary>
public sealed class OriginTests
{
    private const int Block = PoolLayout.BlockSize;
    private const long VolumeBytes = 4 << 20;

    /// <summary>3 MiB + 1000 bytes (the last block partial): data in [0, 1 MiB), [1.5, 2 MiB) and the tail, zeroes elsewhere.</summary>
    private static MemoryOrigin NewOrigin(int seed = 7)
    {
        var bytes = new byte[(3 << 20) + 1000];
        var random = new Random(seed);
        (long Start, long End)[] data = [(0, 1 << 20), (3 << 19, 2 << 20), (3 << 20, bytes.Length)];
        foreach ((long start, long end) in data) random.NextBytes(bytes.AsSpan((int)start, (int)(end - start)));
        bytes.AsSpan(4096 * 3, 4096).Clear(); // a zero block inside a data range: discarded by the copy, still zeroes
        return new MemoryOrigin(bytes, data);
    }

    /// <summary>An extent volume and a chunk volume with every data service.</summary>
    public static TheoryData<string> VolumeKinds => new("none", "lz4+checksum+encrypt");

    private static VolumeOriginRecord RecordOf(MemoryOrigin origin) => new("/images/disk.qcow2", "identity-1", origin.Length, DateTimeOffset.UnixEpoch);

    /// <summary>What the volume must read: the origin's bytes, zeroes past them.</summary>
    private static byte[] Expected(MemoryOrigin origin)
    {
        var all = new byte[VolumeBytes];
        origin.Bytes.CopyTo(all, 0);
        return all;
    }

    private static async Task<(TestPool Pool, MemoryOrigin Origin, byte[] Model)> AttachAsync(string features = "none")
    {
        TestPool t = await TestPool.CreateAsync(drives: 2, driveBytes: 16 << 20);
        MemoryOrigin origin = NewOrigin();
        VolumeFeatures? f = Features.Parse(features);
        await t.Pool.AttachVolumeAsync("vm", VolumeBytes, null, origin, RecordOf(origin), f, t.KeyFor(f));
        t.OpenOrigin = record =>
        {
            Assert.Equal(RecordOf(origin), record);
            return origin.Reopened = origin.Reopen();
        };
        return (t, origin, Expected(origin));
    }

    private static async Task<byte[]> ReadAllAsync(IBlockDevice device) => await TestPool.ReadAsync(device, 0, (int)(VolumeBytes / Block));

    private static void Same(byte[] expected, byte[] actual, string what)
    {
        int at = expected.AsSpan().CommonPrefixLength(actual);
        Assert.True(at == expected.Length, $"{what}: first difference at byte {at}");
    }

    /// <summary>Reopens the pool and checks the volume reads as the model and the pool is consistent.</summary>
    private static async Task ReopenedReadsAsync(TestPool t, byte[] model)
    {
        await t.ReopenAsync();
        await using (IBlockDevice reopened = t.Pool.OpenVolume("vm")) Same(model, await ReadAllAsync(reopened), "after a reopen");
        Assert.True(t.Pool.Check().Consistent); // once the device is closed: its copies-on-read are done
    }

    /// <summary>Reopens the pool (as after a clean stop) and answers the bytes the volume had resolved.</summary>
    private static async Task<long> ReopenedCopiedAsync(TestPool t)
    {
        await t.ReopenAsync();
        return t.Pool.GetVolume("vm").OriginCopy!.BytesCopied;
    }

    /// <summary>Stops a copy after its first unit (1 MiB) is copied.</summary>
    private static async Task CopyOneUnitAsync(Pool pool)
    {
        using var stop = new CancellationTokenSource();
        var progress = new SyncProgress(p => { if (p.BytesCopied > 0) stop.Cancel(); });
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pool.CopyOriginAsync("vm", 1, progress, stop.Token));
    }

    [Theory, MemberData(nameof(VolumeKinds))]
    public async Task Read_BeforeTheCopy_ReturnsTheOriginsBytesAndZeroesPastIt(string features)
    {
        var (t, origin, model) = await AttachAsync(features);
        await using (t)
        {
            await using IBlockDevice device = t.Pool.OpenVolume("vm");
            Same(model, await ReadAllAsync(device), "volume before the copy");
            Assert.Equal(1, origin.Reads); // one read of the whole volume, one origin read
        }
    }

    [Theory, MemberData(nameof(VolumeKinds))]
    public async Task Read_OfUncopiedBlocks_CopiesJustThoseIntoTheVolumeAndLaterReadsSkipTheOrigin(string features)
    {
        var (t, origin, model) = await AttachAsync(features);
        await using (t)
        {
            IBlockDevice device = t.Pool.OpenVolume("vm");
            Same(model.AsSpan(8 * Block, 8 * Block).ToArray(), await TestPool.ReadAsync(device, 8, 8), "the first read");
            Same(model.AsSpan(1000 * Block, 8 * Block).ToArray(), await TestPool.ReadAsync(device, 1000, 8), "a read past the origin's data");
            await device.DisposeAsync(); // waits for the copies-on-read
            VolumeInfo info = t.Pool.GetVolume("vm");
            Assert.Equal(8 * Block, info.OriginCopy!.BytesCopied); // what was read of the origin, nothing more
            Assert.True(info.AllocatedBytes > 0, "the read blocks are in the volume");

            IBlockDevice again = t.Pool.OpenVolume("vm");
            int reads = origin.Reads;
            Same(model.AsSpan(8 * Block, 8 * Block).ToArray(), await TestPool.ReadAsync(again, 8, 8), "the second read");
            Assert.Equal(reads, origin.Reads);
            Assert.Equal(BlockStatus.Success, await again.FlushAsync());
            await again.DisposeAsync();
            Assert.Equal(8 * Block, await ReopenedCopiedAsync(t)); // the bits were committed with the data
            await ReopenedReadsAsync(t, model);
        }
    }

    [Fact]
    public async Task CopyOnRead_OfBlocksAGuestWroteMeanwhile_LeavesTheGuestsData()
    {
        var (t, origin, model) = await AttachAsync();
        await using (t)
        {
            IBlockDevice device = t.Pool.OpenVolume("vm");
            byte[] data = TestPool.Pattern(1, 21);
            // The guest writes block 10 while its read of blocks 8..15 is at the origin: the read returns the origin's
            // bytes (either answer is right for racing I/O), but they must not land over the write in the volume.
            origin.BeforeRead = async offset =>
            {
                if (offset != 8 * Block) return;
                origin.BeforeRead = null;
                Assert.Equal(BlockStatus.Success, await device.WriteAsync(10, data, fua: false));
            };
            await TestPool.ReadAsync(device, 8, 8);
            await device.DisposeAsync();
            data.CopyTo(model, 10 * Block);
            Assert.Equal(8 * Block, t.Pool.GetVolume("vm").OriginCopy!.BytesCopied);
            await using IBlockDevice again = t.Pool.OpenVolume("vm");
            Same(model, await ReadAllAsync(again), "after the read and the write");
            await t.Pool.CopyOriginAsync("vm", 1, null, CancellationToken.None);
            Same(model, await ReadAllAsync(again), "after the copy");
        }
    }

    [Fact]
    public async Task Crash_AfterCopyOnReadWithoutAFlush_ReadsTheOriginsBytes()
    {
        var (t, _, model) = await AttachAsync("lz4+checksum+encrypt");
        await using (t)
        {
            IBlockDevice device = t.Pool.OpenVolume("vm");
            await TestPool.ReadAsync(device, 0, 64);
            await device.DisposeAsync();
            t.Drives.CrashAll(new Random(2));
            t.Pool.Abandon();
            t.Pool = Pool.Open(t.MetadataDir, t.Options());
            Assert.True(t.Pool.Check().Consistent);
            await using IBlockDevice reopened = t.Pool.OpenVolume("vm");
            Same(model, await ReadAllAsync(reopened), "after the crash");
        }
    }

    [Theory, MemberData(nameof(VolumeKinds))]
    public async Task PartialWrite_IntoAChunkNotYetCopied_KeepsTheRestOfTheChunkFromTheOrigin(string features)
    {
        var (t, _, model) = await AttachAsync(features);
        await using (t)
        {
            await using (IBlockDevice device = t.Pool.OpenVolume("vm"))
            {
                byte[] data = TestPool.Pattern(1, 11);
                Assert.Equal(BlockStatus.Success, await device.WriteAsync(1, data, fua: false)); // block 1 of the first 16 KiB chunk
                data.CopyTo(model, Block);
                Same(model, await ReadAllAsync(device), "after the partial write");
                await t.Pool.CopyOriginAsync("vm", 1, null, CancellationToken.None);
                Same(model, await ReadAllAsync(device), "after the copy");
                Assert.Equal(BlockStatus.Success, await device.FlushAsync());
            }
            await ReopenedReadsAsync(t, model);
        }
    }

    [Theory, MemberData(nameof(VolumeKinds))]
    public async Task DiscardAndWriteZeroes_OfAnUncopiedRange_ReadZeroesNotTheOrigin(string features)
    {
        var (t, _, model) = await AttachAsync(features);
        await using (t)
        {
            await using IBlockDevice device = t.Pool.OpenVolume("vm");
            Assert.Equal(BlockStatus.Success, await device.DeallocateAsync(2, 5));          // inside the first data range
            Assert.Equal(BlockStatus.Success, await device.WriteZeroesAsync(400, 20, false)); // across the second one's start
            model.AsSpan(2 * Block, 5 * Block).Clear();
            model.AsSpan(400 * Block, 20 * Block).Clear();
            Same(model, await ReadAllAsync(device), "after the discards");
            await t.Pool.CopyOriginAsync("vm", 1, null, CancellationToken.None);
            Same(model, await ReadAllAsync(device), "after the copy");
        }
    }

    [Fact]
    public async Task Read_SpanningCopiedUncopiedAndWrittenBlocks_ReturnsEachFromItsPlace()
    {
        var (t, _, model) = await AttachAsync();
        await using (t)
        {
            await CopyOneUnitAsync(t.Pool); // [0, 1 MiB) copied
            Assert.Equal(1 << 20, t.Pool.GetVolume("vm").OriginCopy!.BytesCopied);
            await using IBlockDevice device = t.Pool.OpenVolume("vm");
            byte[] data = TestPool.Pattern(3, 12);
            Assert.Equal(BlockStatus.Success, await device.WriteAsync(380, data, fua: false)); // uncopied, in the second range
            data.CopyTo(model, 380 * Block);
            // One read from copied blocks, through uncopied ones (origin data and zeroes) and the written ones.
            byte[] read = await TestPool.ReadAsync(device, 200, 400);
            Same(model.AsSpan(200 * Block, 400 * Block).ToArray(), read, "the spanning read");
            Same(model, await ReadAllAsync(device), "the whole volume");
        }
    }

    [Fact]
    public async Task Copy_RacingAGuestWriteToTheSameBlocks_NeverOverwritesIt()
    {
        var (t, origin, model) = await AttachAsync();
        await using (t)
        {
            await using IBlockDevice device = t.Pool.OpenVolume("vm");
            var copyReading = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var letCopyGo = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            origin.BeforeRead = async offset =>
            {
                if (offset != 0) return;
                copyReading.TrySetResult();
                await letCopyGo.Task;
            };
            Task copy = t.Pool.CopyOriginAsync("vm", 1, null, CancellationToken.None);
            await copyReading.Task; // the copy read the origin's first unit and holds it
            byte[] data = TestPool.Pattern(2, 13);
            Task<BlockStatus> write = device.WriteAsync(10, data, fua: false).AsTask();
            await Task.Delay(50);
            Assert.False(write.IsCompleted, "a guest write to a unit being copied waits for that unit");
            origin.BeforeRead = null;
            letCopyGo.SetResult();
            Assert.Equal(BlockStatus.Success, await write);
            await copy;
            data.CopyTo(model, 10 * Block);
            Same(model, await ReadAllAsync(device), "after the copy");
        }
    }

    [Fact]
    public async Task Crash_MidCopy_ResumesWhereItWasAndKeepsFlushedAndFuaWrites()
    {
        var (t, origin, model) = await AttachAsync();
        await using (t)
        {
            await CopyOneUnitAsync(t.Pool);
            await using (IBlockDevice device = t.Pool.OpenVolume("vm"))
            {
                byte[] flushed = TestPool.Pattern(4, 14), fua = TestPool.Pattern(1, 15);
                Assert.Equal(BlockStatus.Success, await device.WriteAsync(300, flushed, fua: false));
                Assert.Equal(BlockStatus.Success, await device.FlushAsync());
                Assert.Equal(BlockStatus.Success, await device.WriteAsync(600, fua, fua: true));
                flushed.CopyTo(model, 300 * Block);
                fua.CopyTo(model, 600 * Block);
            }
            // Power loss: drives lose what was not flushed, the metadata is what the last commit wrote.
            t.Drives.CrashAll(new Random(1));
            t.Pool.Abandon();
            t.Pool = Pool.Open(t.MetadataDir, t.Options());
            Assert.Equal(["vm"], t.Pool.AttachedVolumes());
            Assert.True(t.Pool.Check().Consistent);
            long resumedAt = -1;
            await t.Pool.CopyOriginAsync("vm", 1, new SyncProgress(p => { if (resumedAt < 0) resumedAt = p.BytesCopied; }), CancellationToken.None);
            Assert.True(resumedAt >= (1 << 20) + 5 * Block, $"the copy resumed at {resumedAt} bytes, not after the first unit and the writes");
            await using IBlockDevice reopened = t.Pool.OpenVolume("vm");
            Same(model, await ReadAllAsync(reopened), "after the crash and the copy");
            Assert.True(origin.Reopened!.Disposed, "the origin is closed once the copy is done");
        }
    }

    [Theory, MemberData(nameof(VolumeKinds))]
    public async Task Copy_WhileGuestsWriteDiscardAndRead_EndsWithEveryGuestChangeAndTheOriginElsewhere(string features)
    {
        var (t, _, model) = await AttachAsync(features);
        await using (t)
        {
            await using IBlockDevice device = t.Pool.OpenVolume("vm");
            using var stop = new CancellationTokenSource();
            Task copy = Task.Run(async () =>
            {
                await t.Pool.CopyOriginAsync("vm", 0.05, null, CancellationToken.None);
                stop.Cancel();
            });
            // Four guests, each owning every fourth 16 KiB stripe of the volume, so the model stays exact.
            int during = 0;
            Task[] guests = Enumerable.Range(0, 4).Select(g => Task.Run(async () =>
            {
                var random = new Random(100 + g);
                long stripes = VolumeBytes / (4 * 16384);
                for (int op = 0; op < 400 && !stop.IsCancellationRequested; op++)
                {
                    Interlocked.Increment(ref during);
                    long lba = (random.NextInt64(stripes) * 4 + g) * 4 + random.Next(4);
                    int blocks = 1 + random.Next((int)(4 - lba % 4));
                    switch (random.Next(3))
                    {
                        case 0:
                            byte[] data = TestPool.Pattern(blocks, random.Next());
                            Assert.Equal(BlockStatus.Success, await device.WriteAsync(lba, data, fua: random.Next(8) == 0));
                            lock (model) data.CopyTo(model, lba * Block);
                            break;
                        case 1:
                            Assert.Equal(BlockStatus.Success, await device.DeallocateAsync(lba, blocks));
                            lock (model) model.AsSpan((int)(lba * Block), blocks * Block).Clear();
                            break;
                        default:
                            byte[] read = await TestPool.ReadAsync(device, lba, blocks);
                            byte[] expected;
                            lock (model) expected = model.AsSpan((int)(lba * Block), blocks * Block).ToArray();
                            Same(expected, read, $"guest {g} read at {lba}");
                            break;
                    }
                }
            })).ToArray();
            await Task.WhenAll(guests);
            await copy;
            Assert.True(during >= 40, $"only {during} guest operations ran while the copy did");
            Same(model, await ReadAllAsync(device), "after the copy");
            Assert.Equal(BlockStatus.Success, await device.FlushAsync());
            await ReopenedReadsAsync(t, model);
        }
    }

    [Fact]
    public async Task Copy_Done_DropsTheOriginForGood()
    {
        var (t, origin, model) = await AttachAsync();
        await using (t)
        {
            await using (IBlockDevice device = t.Pool.OpenVolume("vm"))
            {
                await t.Pool.CopyOriginAsync("vm", 0.5, null, CancellationToken.None);
                Same(model, await ReadAllAsync(device), "an open device after the drop");
            }
            Assert.Null(t.Pool.GetVolume("vm").OriginCopy);
            Assert.Empty(t.Pool.AttachedVolumes());
            Assert.True(origin.Disposed);
            Assert.True(t.Pool.GetVolume("vm").AllocatedBytes > 0);
            t.OpenOrigin = _ => throw new InvalidOperationException("a dropped origin is never opened again");
            await ReopenedReadsAsync(t, model);
        }
    }

    [Fact]
    public async Task Open_OriginMissingOrChanged_KeepsThatVolumeClosedAndTheOthersOpen()
    {
        var (t, _, _) = await AttachAsync();
        await using (t)
        {
            await t.Pool.CreateVolumeAsync("other", 1 << 20);
            t.OpenOrigin = record => throw new VolumeException(VolumeError.Invalid, $"{record.Path} changed since it was attached (size 3146728 -> 4096)");
            await t.ReopenAsync();
            var e = Assert.Throws<VolumeException>(() => t.Pool.OpenVolume("vm"));
            Assert.Contains("volume tank/vm stays closed: its origin /images/disk.qcow2 cannot be used", e.Message);
            Assert.Contains("changed since it was attached", e.Message);
            Assert.Contains("changed since it was attached", t.Pool.GetVolume("vm").OriginCopy!.Problem);
            await Assert.ThrowsAsync<VolumeException>(() => t.Pool.CopyOriginAsync("vm", 1, null, CancellationToken.None));
            await using IBlockDevice other = t.Pool.OpenVolume("other");
            Assert.Equal(BlockStatus.Success, await other.WriteAsync(0, TestPool.Pattern(1, 1), fua: true));
        }
    }

    [Fact]
    public async Task Copy_OriginChangedDuringTheCopy_KeepsTheOriginAndFails()
    {
        var (t, origin, _) = await AttachAsync();
        await using (t)
        {
            origin.Changed = "mtime 1 -> 2";
            var e = await Assert.ThrowsAsync<VolumeException>(() => t.Pool.CopyOriginAsync("vm", 1, null, CancellationToken.None));
            Assert.Contains("its origin /images/disk.qcow2 changed during the copy (mtime 1 -> 2)", e.Message);
            Assert.Equal(["vm"], t.Pool.AttachedVolumes());
            Assert.False(origin.Disposed);
        }
    }

    [Fact]
    public async Task SnapshotAndShrink_OfAnAttachedVolume_AreRefusedNamingTheOrigin_DeleteDropsIt()
    {
        var (t, origin, _) = await AttachAsync();
        await using (t)
        {
            var snap = await Assert.ThrowsAsync<VolumeException>(() => t.Pool.SnapshotAsync("vm", "s1"));
            Assert.Contains("still reads from its origin /images/disk.qcow2 (0% copied): take the snapshot once the copy is done", snap.Message);
            var shrink = await Assert.ThrowsAsync<VolumeException>(() => t.Pool.ResizeVolumeAsync("vm", 3 << 20, force: true));
            Assert.Contains("shrink it once the copy is done", shrink.Message);
            await t.Pool.ResizeVolumeAsync("vm", 8 << 20); // growing needs nothing from the origin
            await t.Pool.DeleteVolumeAsync("vm");
            Assert.True(origin.Disposed);
            await t.ReopenAsync(); // no origin record left behind without its volume
            Assert.Empty(t.Pool.ListVolumes());
        }
    }

    [Fact]
    public async Task Attach_SizeBelowTheOrigin_IsRefusedAndClosesTheOrigin()
    {
        await using TestPool t = await TestPool.CreateAsync();
        MemoryOrigin origin = NewOrigin();
        var e = await Assert.ThrowsAsync<VolumeException>(() => t.Pool.AttachVolumeAsync("vm", 1 << 20, null, origin, RecordOf(origin)));
        Assert.Contains("smaller than its origin", e.Message);
        Assert.True(origin.Disposed);
        Assert.Empty(t.Pool.ListVolumes());
    }

    [Fact]
    public async Task Attach_OriginClaimingAHugeSize_IsRefusedBeforeItsBitmapIsMade()
    {
        await using TestPool t = await TestPool.CreateAsync();
        const long huge = 1L << 56; // 64 PiB: a 2 TiB bitmap
        var origin = new MemoryOrigin([], [], huge);
        var record = new VolumeOriginRecord("/images/huge.qcow2", "identity-1", huge, DateTimeOffset.UnixEpoch);
        var e = await Assert.ThrowsAsync<VolumeException>(() => t.Pool.AttachVolumeAsync("vm", huge, null, origin, record));
        Assert.Contains("needs 2199023255552 bytes of memory to follow its copy", e.Message);
        Assert.True(origin.Disposed);
        Assert.Empty(t.Pool.ListVolumes());
    }
}

/// <summary>An origin in memory: bytes, the ranges that hold data, and hooks to hold a read or report a change.</summary>
internal sealed class MemoryOrigin(byte[] bytes, (long Start, long End)[] data, long? length = null) : IVolumeOrigin
{
    public byte[] Bytes => bytes;
    public long Length => length ?? bytes.Length;
    public bool Disposed { get; private set; }
    public string? Changed { get; set; }
    public Func<long, Task>? BeforeRead { get; set; }

    /// <summary>The instance a pool opened again after a reopen (<see cref="Reopen"/>).</summary>
    public MemoryOrigin? Reopened { get; set; }

    public MemoryOrigin Reopen() => new(bytes, data);

    public (bool Data, long Length) Extent(long offset, long maxLength)
    {
        foreach ((long start, long end) in data)
        {
            if (offset >= start && offset < end) return (true, Math.Min(maxLength, end - offset));
            if (offset < start) return (false, Math.Min(maxLength, start - offset));
        }
        return (false, maxLength);
    }

    /// <summary>Reads served so far.</summary>
    public int Reads;

    public async ValueTask<BlockStatus> ReadAsync(long offset, Memory<byte> destination)
    {
        Assert.False(Disposed, "read after the origin was closed");
        Interlocked.Increment(ref Reads);
        if (BeforeRead is { } hook) await hook(offset);
        destination.Span.Clear();
        if (offset < bytes.Length) bytes.AsSpan((int)offset, (int)Math.Min(destination.Length, bytes.Length - offset)).CopyTo(destination.Span);
        return BlockStatus.Success;
    }

    public string? CheckUnchanged() => Changed;

    public void Dispose() => Disposed = true;
}

/// <summary>Progress reported on the caller's thread (Progress&lt;T&gt; posts to the thread pool).</summary>
internal sealed class SyncProgress(Action<OriginCopyProgress> report) : IProgress<OriginCopyProgress>
{
    public void Report(OriginCopyProgress value) => report(value);
}
