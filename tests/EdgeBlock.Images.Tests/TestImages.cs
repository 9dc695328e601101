namespace EdgeBlock.Images.Tests;

/// <summary>Test disks: a raw file with data, explicit zeros and holes at cluster and sub-cluster granularity.</summary>
internal static class TestImages
{
    public const long Size = 16 << 20;

    /// <summary>
    /// Writes a sparse raw disk: random data in scattered 4 KiB–192 KiB runs (some not cluster-aligned), a run of
    /// written zeros (allocated in the file, zero in content) and holes everywhere else.
    /// </summary>
    public static byte[] WriteRaw(string path, int seed = 1)
    {
        var random = new Random(seed);
        byte[] disk = new byte[Size];
        (long Offset, int Length)[] runs = [(0, 65536), (200 << 10, 4096), (1 << 20, 196608), (3 << 20 | 6144, 10000), (9 << 20, 65536), (Size - 8192, 8192)];
        foreach ((long offset, int length) in runs) random.NextBytes(disk.AsSpan((int)offset, length));
        using var file = File.OpenHandle(path, FileMode.CreateNew, FileAccess.Write);
        RandomAccess.SetLength(file, Size);
        foreach ((long offset, int length) in runs) RandomAccess.Write(file, disk.AsSpan((int)offset, length), offset);
        RandomAccess.Write(file, new byte[131072], 5 << 20); // allocated zeros
        return disk;
    }

    /// <summary>Everything a reader returns for the whole virtual disk.</summary>
    public static byte[] ReadAll(ImageReader image)
    {
        byte[] all = new byte[image.VirtualSize];
        for (long offset = 0; offset < all.Length; offset += 1 << 20)
            image.Read(offset, all.AsSpan((int)offset, (int)Math.Min(1 << 20, all.Length - offset)));
        return all;
    }

    /// <summary>
    /// What a thin copy writes: each non-zero run, applied to a zeroed disk. With several workers (forked readers,
    /// writes in any order) a block written twice fails the copy.
    /// </summary>
    public static (byte[] Disk, long Written) CopyAll(ImageReader image, int workers = 1)
    {
        byte[] disk = new byte[image.VirtualSize];
        var writtenBlocks = new bool[(image.VirtualSize + ImageCopy.BlockBytes - 1) / ImageCopy.BlockBytes];
        long written = ImageCopy.CopyAsync(image, (offset, bytes, _) =>
        {
            Assert.Equal(0, offset % ImageCopy.BlockBytes); // a volume takes whole blocks
            for (long b = offset / ImageCopy.BlockBytes; b < (offset + bytes.Length + ImageCopy.BlockBytes - 1) / ImageCopy.BlockBytes; b++)
                Assert.False(Interlocked.Exchange(ref writtenBlocks[b], true), $"block {b} written twice");
            bytes.Span.CopyTo(disk.AsSpan((int)offset));
            return ValueTask.CompletedTask;
        }, null, CancellationToken.None, workers).GetAwaiter().GetResult();
        return (disk, written);
    }

    /// <summary>qemu-img convert -O raw of an image: the reference bytes.</summary>
    public static byte[] QemuRaw(TempDir dir, string image)
    {
        string raw = dir[Path.GetFileName(image) + ".ref.raw"];
        QemuImg.Ok("qemu-img", "convert", "-O", "raw", image, raw);
        return File.ReadAllBytes(raw);
    }
}
