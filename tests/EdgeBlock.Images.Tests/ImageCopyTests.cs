namespace EdgeBlock.Images.Tests;

/// <summary>The copy loop around the reader: what it hands to the target and how it ends.</summary>
public sealed class ImageCopyTests
{
    [Fact]
    public async Task CopyAsync_L2TableBeyondTheFile_ReturnsAFaultedTaskInsteadOfThrowing()
    {
        using var dir = new TempDir();
        string path = HostileImages.Valid(dir["bad-l2.qcow2"], Qcow2Compression.None);
        HostileImages.WriteU64(path, (long)HostileImages.ReadU64(path, 40), (1UL << 63) | (1UL << 40)); // met when the extents are listed
        using ImageReader image = ImageFile.Open(path);
        Task<long>? copy = null;
        Exception? thrown = Record.Exception(() => { copy = ImageCopy.CopyAsync(image, (_, _, _) => ValueTask.CompletedTask, null, CancellationToken.None); });
        Assert.Null(thrown);
        var e = await Assert.ThrowsAsync<ImageException>(() => copy!);
        Assert.Contains("an L2 table at offset 1099511627776", e.Message);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public async Task CopyAsync_ReadFails_ThrowsTheImageProblemAfterWritesEnd(int workers)
    {
        using var dir = new TempDir();
        string path = HostileImages.Valid(dir["late.qcow2"], Qcow2Compression.Deflate);
        // The compressed cluster at 1 MiB + 64 KiB (L2 slot 17) turns to garbage: the second chunk's read fails.
        ulong entry = HostileImages.ReadU64(path, HostileImages.FirstL2Entry(path) + 17 * 8);
        HostileImages.Patch(path, (long)(entry & ((1UL << 54) - 1)), new byte[] { 0xff, 0xff, 0xff, 0xff });
        using ImageReader image = ImageFile.Open(path);
        int inFlight = 0, finished = 0;
        var e = await Assert.ThrowsAsync<ImageException>(() => ImageCopy.CopyAsync(image, async (offset, data, cancel) =>
        {
            Interlocked.Increment(ref inFlight);
            await Task.Delay(300, CancellationToken.None); // a slow volume that finishes what it started
            Interlocked.Decrement(ref inFlight);
            Interlocked.Increment(ref finished);
        }, null, CancellationToken.None, workers));
        Assert.Contains("does not decompress", e.Message);
        Assert.Equal(0, Volatile.Read(ref inFlight)); // the buffers written from are no longer in use
        Assert.InRange(finished, workers == 1 ? 1 : 0, 1); // at most the first chunk's one run (two clusters)
    }

    [Fact]
    public async Task CopyAsync_WriteFailsWhileOtherWorkersWrite_ReturnsOnlyAfterTheirWritesEnd()
    {
        using var dir = new TempDir();
        string path = dir["full.raw"];
        byte[] data = new byte[8 << 20];
        new Random(5).NextBytes(data);
        File.WriteAllBytes(path, data); // eight 1 MiB chunks of data
        using ImageReader image = ImageFile.Open(path);
        int inFlight = 0, finished = 0;
        var e = await Assert.ThrowsAsync<IOException>(() => ImageCopy.CopyAsync(image, async (offset, bytes, cancel) =>
        {
            if (offset == ImageCopy.ChunkBytes)
            {
                // Fail only once other workers' writes are in flight (or after 10 s, which the asserts below catch).
                for (int i = 0; i < 1000 && Volatile.Read(ref inFlight) < 2; i++) await Task.Delay(10, CancellationToken.None);
                throw new IOException("the volume refused the write");
            }
            Interlocked.Increment(ref inFlight);
            await Task.Delay(300, CancellationToken.None);
            Interlocked.Decrement(ref inFlight);
            Interlocked.Increment(ref finished);
        }, null, CancellationToken.None, workers: 4));
        Assert.Equal("the volume refused the write", e.Message); // the failure, not a worker's cancel
        Assert.Equal(0, Volatile.Read(ref inFlight));
        Assert.InRange(finished, 2, 3); // the writes in flight ended; no worker took a new chunk after the failure
    }

    [Fact]
    public async Task CopyAsync_Cancelled_StopsTakingChunksAndThrows()
    {
        using var dir = new TempDir();
        string path = dir["full.raw"];
        byte[] data = new byte[16 << 20];
        new Random(6).NextBytes(data);
        File.WriteAllBytes(path, data);
        using ImageReader image = ImageFile.Open(path);
        using var cancel = new CancellationTokenSource();
        int calls = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => ImageCopy.CopyAsync(image, (offset, bytes, token) =>
        {
            if (Interlocked.Increment(ref calls) == 2) cancel.Cancel();
            return ValueTask.CompletedTask;
        }, null, cancel.Token, workers: 4));
        Assert.InRange(Volatile.Read(ref calls), 2, 5); // the chunks already read are written; no more are taken
    }
}
