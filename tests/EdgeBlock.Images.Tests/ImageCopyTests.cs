namespace EdgeBlock.Images.Tests;

/// <summary>The copy loop around the reader: what it hands to the target and how it ends.</summary>
public sealed class ImageCopyTests
{
    [Fact]
    public async Task CopyAsync_ReadFailsWhileWritesAreInFlight_ReturnsOnlyAfterTheyEnd()
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
            await Task.Delay(300, cancel); // a slow volume: the next chunk is read meanwhile
            Interlocked.Decrement(ref inFlight);
            Interlocked.Increment(ref finished);
        }, null, CancellationToken.None));
        Assert.Contains("does not decompress", e.Message);
        Assert.Equal(0, Volatile.Read(ref inFlight)); // the buffer it wrote from is no longer in use
        Assert.Equal(1, finished);                   // the first chunk's one run (two clusters) was written
    }
}
