namespace EdgeBlock.Images;

/// <summary>Progress of a copy: bytes of the source's data ranges examined so far, of how many.</summary>
public readonly record struct CopyProgress(long BytesDone, long BytesTotal, long BytesWritten);

/// <summary>
/// Copies an image's data ranges, as qemu-img convert does: zero and unallocated ranges are skipped without a read,
/// data ranges are read in chunks, and blocks that read as all zeros are skipped too, so the target stays thin.
/// </summary>
public static class ImageCopy
{
    public const int ChunkBytes = 1 << 20;
    public const int BlockBytes = 4096;

    /// <summary>
    /// Calls <paramref name="write"/> with each run of non-zero blocks in ascending order (offset, bytes); the bytes
    /// are valid until the call's task completes. Answers the bytes written.
    /// </summary>
    public static async Task<long> CopyAsync(ImageReader source, Func<long, ReadOnlyMemory<byte>, CancellationToken, ValueTask> write,
        IProgress<CopyProgress>? progress, CancellationToken cancel)
    {
        List<ImageExtent> data = source.Extents().Where(e => e.Kind == ExtentKind.Data).ToList();
        long total = data.Sum(e => e.Length), done = 0, written = 0;
        progress?.Report(new CopyProgress(0, total, 0));
        byte[] buffer = GC.AllocateUninitializedArray<byte>(ChunkBytes);
        foreach (ImageExtent extent in data)
        {
            for (long offset = extent.Offset; offset < extent.End;)
            {
                cancel.ThrowIfCancellationRequested();
                int n = (int)Math.Min(ChunkBytes, extent.End - offset);
                source.Read(offset, buffer.AsSpan(0, n));
                for (int start = 0; start < n;)
                {
                    int runStart = NextNonZero(buffer, start, n);
                    if (runStart >= n) break;
                    int runEnd = NextZero(buffer, runStart, n);
                    await write(offset + runStart, buffer.AsMemory(runStart, runEnd - runStart), cancel).ConfigureAwait(false);
                    written += runEnd - runStart;
                    start = runEnd;
                }
                offset += n;
                done += n;
                progress?.Report(new CopyProgress(done, total, written));
            }
        }
        return written;
    }

    /// <summary>Synchronous form for writers that are not async (image files).</summary>
    public static long CopyTo(ImageReader source, IImageWriter target, IProgress<CopyProgress>? progress = null, CancellationToken cancel = default) =>
        CopyAsync(source, (offset, bytes, _) => { target.Write(offset, bytes.Span); return ValueTask.CompletedTask; }, progress, cancel)
            .GetAwaiter().GetResult();

    private static int NextNonZero(byte[] buffer, int start, int end)
    {
        while (start < end && IsZeroBlock(buffer, start, end)) start += Math.Min(BlockBytes, end - start);
        return start;
    }

    private static int NextZero(byte[] buffer, int start, int end)
    {
        while (start < end && !IsZeroBlock(buffer, start, end)) start += Math.Min(BlockBytes, end - start);
        return start;
    }

    private static bool IsZeroBlock(byte[] buffer, int start, int end) =>
        !buffer.AsSpan(start, Math.Min(BlockBytes, end - start)).ContainsAnyExcept((byte)0);
}
