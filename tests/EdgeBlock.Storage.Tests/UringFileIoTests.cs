using EdgeBlock.Storage.Tests.Support;

namespace EdgeBlock.Storage.Tests;

/// <summary>
/// The io_uring engine of <see cref="FileBlockDevice"/>. The contract tests (FileBlockDeviceTests) already run on
/// it, since it is the default; these check that requests really go through the ring, and its edges: more
/// requests than it holds, buffers it cannot take, short transfers, errors, concurrency, and disposal.
/// </summary>
public sealed class UringFileIoTests : IDisposable
{
    private const int MiB = 1024 * 1024;
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    private FileBlockDevice OpenUring(string name, long size = 8 * MiB) =>
        FileBlockDevice.Open(_directory.File(name), size, 512, preferDirectIo: true, FileIoEngine.IoUring);

    [Fact]
    public async Task Open_Default_UsesIoUringForAlignedReadsAndWrites()
    {
        await using FileBlockDevice device = FileBlockDevice.Open(_directory.File("default.img"), 4 * MiB);
        Assert.True(device.UsesIoUring);
        using var buffer = new AlignedBuffer(64 * 1024);
        DataPattern.Fill(buffer.Span, 8192, seed: 3);

        Assert.Equal(BlockStatus.Success, await device.WriteAsync(16, buffer.Memory, fua: false));
        buffer.Span.Clear();
        Assert.Equal(BlockStatus.Success, await device.ReadAsync(16, buffer.Memory));

        DataPattern.AssertMatches(buffer.Span, 8192, seed: 3);
        Assert.Equal(2, Interlocked.Read(ref device.Uring!.Completions));
        Assert.Equal(0, Interlocked.Read(ref device.Uring.Fallbacks));
    }

    [Fact]
    public async Task Open_ThreadPoolEngine_HasNoRing()
    {
        await using FileBlockDevice device = FileBlockDevice.Open(_directory.File("pool.img"), MiB, 512, preferDirectIo: true, FileIoEngine.ThreadPool);
        Assert.False(device.UsesIoUring);
        Assert.True(device.UsesDirectIo);
    }

    [Fact]
    public async Task Open_WithoutDirectIo_HasNoRing()
    {
        await using FileBlockDevice device = FileBlockDevice.Open(_directory.File("buffered.img"), MiB, 512, preferDirectIo: false);
        Assert.False(device.UsesIoUring);
    }

    [Fact]
    public async Task ManyConcurrentRequests_FromSeveralThreads_AllLandWhereTheyBelong()
    {
        await using FileBlockDevice device = OpenUring("concurrent.img", 16 * MiB);
        const int Blocks = 512; // 4 KiB each
        var buffers = Enumerable.Range(0, Blocks).Select(_ => new AlignedBuffer(4096)).ToArray();
        try
        {
            for (int i = 0; i < Blocks; i++) DataPattern.Fill(buffers[i].Span, i * 4096L, seed: 9);
            // Submitted from several pool threads at once, as several queues would.
            BlockStatus[] written = await Task.WhenAll(Enumerable.Range(0, Blocks).Select(i =>
                Task.Run(async () => await device.WriteAsync(i * 8L, buffers[i].Memory, fua: false))));
            Assert.All(written, status => Assert.Equal(BlockStatus.Success, status));
            Assert.Equal(BlockStatus.Success, await device.FlushAsync());

            foreach (AlignedBuffer buffer in buffers) buffer.Span.Clear();
            BlockStatus[] read = await Task.WhenAll(Enumerable.Range(0, Blocks).Select(i =>
                Task.Run(async () => await device.ReadAsync(i * 8L, buffers[i].Memory))));
            Assert.All(read, status => Assert.Equal(BlockStatus.Success, status));
            for (int i = 0; i < Blocks; i++) DataPattern.AssertMatches(buffers[i].Span, i * 4096L, seed: 9);
            Assert.Equal(2 * Blocks, Interlocked.Read(ref device.Uring!.Completions));
        }
        finally
        {
            foreach (IDisposable buffer in buffers) buffer.Dispose();
        }
    }

    [Fact]
    public async Task MoreRequestsThanTheRingHolds_TheRestGoToTheThreadPool()
    {
        await using FileBlockDevice device = OpenUring("overflow.img", 16 * MiB);
        int count = (int)UringFileIo.MaxInFlight + 200;
        using var buffer = new AlignedBuffer(count * 4096);
        DataPattern.Fill(buffer.Span[..(4 * MiB)], 0, seed: 5);
        Assert.Equal(BlockStatus.Success, await device.WriteAsync(0, buffer.Memory[..(4 * MiB)], fua: false));
        buffer.Span.Clear();

        var reads = new ValueTask<BlockStatus>[count];
        for (int i = 0; i < count; i++) reads[i] = device.ReadAsync(i % 1024 * 8L, buffer.Memory.Slice(i * 4096, 4096));
        foreach (ValueTask<BlockStatus> read in reads) Assert.Equal(BlockStatus.Success, await read);

        for (int i = 0; i < count; i++) DataPattern.AssertMatches(buffer.Span.Slice(i * 4096, 4096), i % 1024 * 4096L, seed: 5);
    }

    [Fact]
    public async Task UnalignedBuffer_GoesThroughTheBufferedDescriptor()
    {
        await using FileBlockDevice device = OpenUring("unaligned.img");
        byte[] data = DataPattern.Create(4096 + 1, 0, seed: 2);
        Memory<byte> unaligned = data.AsMemory(1);

        Assert.Equal(BlockStatus.Success, await device.WriteAsync(0, unaligned, fua: false));
        byte[] back = new byte[4096 + 1];
        Assert.Equal(BlockStatus.Success, await device.ReadAsync(0, back.AsMemory(1)));

        Assert.Equal(unaligned.ToArray(), back.AsMemory(1).ToArray());
        Assert.Equal(0, Interlocked.Read(ref device.Uring!.Completions));
    }

    [Fact]
    public async Task FuaWriteAndFlush_Succeed_AndDataReadsBack()
    {
        await using FileBlockDevice device = OpenUring("fua.img");
        using var buffer = new AlignedBuffer(8192);
        DataPattern.Fill(buffer.Span, 0, seed: 4);

        Assert.Equal(BlockStatus.Success, await device.WriteAsync(0, buffer.Memory, fua: true));
        Assert.Equal(BlockStatus.Success, await device.FlushAsync());
        buffer.Span.Clear();
        Assert.Equal(BlockStatus.Success, await device.ReadAsync(0, buffer.Memory));

        DataPattern.AssertMatches(buffer.Span, 0, seed: 4);
    }

    [Fact]
    public async Task OutOfRange_IsRefusedBeforeTheRing()
    {
        await using FileBlockDevice device = OpenUring("range.img", MiB);
        using var buffer = new AlignedBuffer(8192);

        Assert.Equal(BlockStatus.OutOfRange, await device.ReadAsync(MiB / 512 - 8, buffer.Memory));
        Assert.Equal(BlockStatus.OutOfRange, await device.WriteAsync(MiB / 512, buffer.Memory[..4096], fua: false));
        Assert.Equal(0, Interlocked.Read(ref device.Uring!.Completions));
    }

    [Fact]
    public async Task ShortRead_FileTruncatedUnderneath_IsFinishedTheBlockingWay_AsAHole()
    {
        string path = _directory.File("truncated.img");
        await using FileBlockDevice device = FileBlockDevice.Open(path, 4 * MiB, 512, preferDirectIo: true, FileIoEngine.IoUring);
        using var buffer = new AlignedBuffer(8192);
        DataPattern.Fill(buffer.Span, MiB - 4096, seed: 6);
        Assert.Equal(BlockStatus.Success, await device.WriteAsync(MiB / 512 - 8, buffer.Memory, fua: true));
        Commands.Run("truncate", "-s", MiB.ToString(System.Globalization.CultureInfo.InvariantCulture), path); // cuts the second 4 KiB off

        Assert.Equal(BlockStatus.Success, await device.ReadAsync(MiB / 512 - 8, buffer.Memory));

        DataPattern.AssertMatches(buffer.Span[..4096], MiB - 4096, seed: 6);
        DataPattern.AssertZeroes(buffer.Span[4096..]);
        Assert.Equal(1, Interlocked.Read(ref device.Uring!.Fallbacks));
    }

    [Fact]
    public async Task Write_FileSystemFull_ReturnsCapacityExceeded_FromTheRing()
    {
        using var tmpfs = new SmallTmpfs(256 * 1024);
        await using FileBlockDevice device = FileBlockDevice.Open(tmpfs.File("full.img"), 4 * MiB);
        using var aligned = new AlignedBuffer(MiB);

        Assert.Equal(BlockStatus.CapacityExceeded, await device.WriteAsync(0, aligned.Memory, fua: false));
        if (device.UsesIoUring) Assert.True(Interlocked.Read(ref device.Uring!.Completions) >= 1);
    }

    [Theory]
    [InlineData(4096, 4096, false)]
    [InlineData(0, 4096, true)]         // end of file: short
    [InlineData(2048, 4096, true)]      // short
    [InlineData(-11, 4096, true)]       // EAGAIN
    [InlineData(-22, 4096, true)]       // EINVAL
    [InlineData(-5, 4096, false)]       // EIO: a status
    [InlineData(-28, 4096, false)]      // ENOSPC: a status
    public void NeedsRetry_OnlyForShortTransfersAndRefusals(int result, long length, bool retry) =>
        Assert.Equal(retry, UringFileIo.NeedsRetry(result, length));

    [Fact]
    public void Ring_ReportsErrnoOfAFailedRequest()
    {
        // A read from a write-only descriptor fails in the kernel with EBADF: the CQE carries -errno.
        string path = _directory.File("write-only.img");
        File.WriteAllBytes(path, new byte[8192]);
        using var writeOnly = File.OpenHandle(path, FileMode.Open, FileAccess.Write);
        using IoUring ring = IoUring.TryCreate(8, 16, out int errno) ?? throw new InvalidOperationException($"io_uring_setup: errno {errno}");
        Assert.Equal(0, ring.RegisterFiles([(int)writeOnly.DangerousGetHandle()]));
        using var buffer = new AlignedBuffer(4096);

        unsafe
        {
            EdgeBlock.Interop.Native.IoUringSqe* sqe = ring.GetSqe();
            sqe->Opcode = IoUring.OpRead;
            sqe->Flags = IoUring.SqeFixedFile;
            sqe->Address = (ulong)buffer.Pointer;
            sqe->Length = 4096;
            sqe->UserData = 42;
        }
        Assert.Equal(0, ring.Submit());
        Assert.Equal(0, ring.WaitForCompletion());

        Assert.True(ring.TryReap(out var cqe));
        Assert.Equal(42UL, cqe.UserData);
        Assert.Equal(-9, cqe.Result);
        Assert.False(ring.TryReap(out _));
        Assert.Equal(0, ring.UnregisterFiles());
    }

    [Fact]
    public async Task Dispose_WithReadsInFlight_TheyComplete_AndLaterOnesAreNotReady()
    {
        FileBlockDevice device = OpenUring("dispose.img");
        using var buffer = new AlignedBuffer(64 * 4096);
        var reads = new ValueTask<BlockStatus>[64];
        for (int i = 0; i < reads.Length; i++) reads[i] = device.ReadAsync(i * 8L, buffer.Memory.Slice(i * 4096, 4096));

        await device.DisposeAsync();

        foreach (ValueTask<BlockStatus> read in reads) Assert.Contains(await read, new[] { BlockStatus.Success, BlockStatus.NotReady });
        Assert.Equal(BlockStatus.NotReady, await device.ReadAsync(0, buffer.Memory[..4096]));
    }
}
