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
    /// Calls <paramref name="write"/> with each run of non-zero blocks in ascending order (offset, bytes), one call at a
    /// time; the bytes are valid until the call's task completes. The next chunk is read (and decompressed) while the
    /// writes of the previous one are in flight: two chunk buffers. Answers the bytes written.
    /// </summary>
    public static async Task<long> CopyAsync(ImageReader source, Func<long, ReadOnlyMemory<byte>, CancellationToken, ValueTask> write,
        IProgress<CopyProgress>? progress, CancellationToken cancel)
    {
        List<(long Start, long End)> ranges = DataRanges(source);
        long total = ranges.Sum(r => r.End - r.Start), done = 0, written = 0;
        progress?.Report(new CopyProgress(0, total, 0));
        byte[][] buffers = [GC.AllocateUninitializedArray<byte>(ChunkBytes), GC.AllocateUninitializedArray<byte>(ChunkBytes)];
        Task writing = Task.CompletedTask;
        int next = 0;
        try
        {
            foreach ((long start, long end) in ranges)
            {
                for (long offset = start; offset < end;)
                {
                    cancel.ThrowIfCancellationRequested();
                    int n = (int)Math.Min(ChunkBytes, end - offset);
                    byte[] buffer = buffers[next];
                    next ^= 1;
                    source.Read(offset, buffer.AsSpan(0, n)); // the other buffer's writes run meanwhile
                    List<(int Start, int Length)> runs = NonZeroRuns(buffer.AsSpan(0, n));
                    await writing.ConfigureAwait(false);      // in order, and that buffer is free for the next read
                    writing = WriteRunsAsync(write, offset, buffer, runs, cancel);
                    written += runs.Sum(r => r.Length);
                    offset += n;
                    done += n;
                    progress?.Report(new CopyProgress(done, total, written));
                }
            }
            await writing.ConfigureAwait(false);
        }
        finally
        {
            // A failed read or a cancel must not return while writes from the buffers are still in flight.
            await writing.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
        return written;
    }

    private static async Task WriteRunsAsync(Func<long, ReadOnlyMemory<byte>, CancellationToken, ValueTask> write, long offset, byte[] buffer,
        List<(int Start, int Length)> runs, CancellationToken cancel)
    {
        foreach ((int start, int length) in runs) await write(offset + start, buffer.AsMemory(start, length), cancel).ConfigureAwait(false);
    }

    /// <summary>
    /// The data extents widened to whole <see cref="BlockBytes"/> blocks (subclusters and file system holes can be
    /// finer) and merged, so that every write a copy makes is block-aligned; the last may end at the virtual size.
    /// </summary>
    public static List<(long Start, long End)> DataRanges(ImageReader source)
    {
        var ranges = new List<(long Start, long End)>();
        foreach (ImageExtent e in source.Extents())
        {
            if (e.Kind != ExtentKind.Data) continue;
            long start = e.Offset / BlockBytes * BlockBytes;
            long end = Math.Min(source.VirtualSize, (e.End + BlockBytes - 1) / BlockBytes * BlockBytes);
            if (ranges.Count > 0 && ranges[^1].End >= start) ranges[^1] = (ranges[^1].Start, Math.Max(ranges[^1].End, end));
            else ranges.Add((start, end));
        }
        return ranges;
    }

    /// <summary>The runs of <paramref name="data"/> made of blocks that are not all zeros, as (start, length).</summary>
    public static List<(int Start, int Length)> NonZeroRuns(ReadOnlySpan<byte> data)
    {
        var runs = new List<(int, int)>();
        int runStart = -1;
        for (int block = 0; block < data.Length; block += BlockBytes)
        {
            bool zero = !data.Slice(block, Math.Min(BlockBytes, data.Length - block)).ContainsAnyExcept((byte)0);
            if (!zero && runStart < 0) runStart = block;
            else if (zero && runStart >= 0)
            {
                runs.Add((runStart, block - runStart));
                runStart = -1;
            }
        }
        if (runStart >= 0) runs.Add((runStart, data.Length - runStart));
        return runs;
    }

    /// <summary>Synchronous form for writers that are not async (image files).</summary>
    public static long CopyTo(ImageReader source, IImageWriter target, IProgress<CopyProgress>? progress = null, CancellationToken cancel = default) =>
        CopyAsync(source, (offset, bytes, _) => { target.Write(offset, bytes.Span); return ValueTask.CompletedTask; }, progress, cancel)
            .GetAwaiter().GetResult();
}
