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
    /// Calls <paramref name="write"/> with each run of non-zero blocks (offset, bytes); the bytes are valid until the
    /// call's task completes. The copy runs on <paramref name="workers"/> threads of its own: reading and decompressing
    /// are synchronous and long (a chunk of compressed clusters takes milliseconds), and on the thread pool they would
    /// starve the I/O completions the writes wait for. With one worker the runs come in ascending order, one call at a
    /// time (image files are written in order). With more, each worker has a reader of its own
    /// (<see cref="ImageReader.Fork"/>) and a chunk buffer, takes the next chunk, reads it and writes its runs, so
    /// reads, decompression and writes of several chunks overlap and calls come in any order. A failed read or write, or
    /// a cancel, stops the others; the task ends only after every write in flight has ended. Answers the bytes written.
    /// </summary>
    public static Task<long> CopyAsync(ImageReader source, Func<long, ReadOnlyMemory<byte>, CancellationToken, ValueTask> write,
        IProgress<CopyProgress>? progress, CancellationToken cancel, int workers = 1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(workers, 1);
        Copy copy;
        try
        {
            copy = new Copy(source, write, progress, cancel); // lists the data ranges: a hostile image fails here
        }
        catch (Exception e) when (e is ImageException or IOException)
        {
            return Task.FromException<long>(e); // as every other failure of the copy: in the task, not thrown at the caller
        }
        copy.Start(workers);
        return copy.Result.Task;
    }

    /// <summary>One copy's shared state: the next chunk, the progress, the first failure, the workers still running.</summary>
    private sealed class Copy(ImageReader source, Func<long, ReadOnlyMemory<byte>, CancellationToken, ValueTask> write,
        IProgress<CopyProgress>? progress, CancellationToken cancel)
    {
        private readonly List<(long Start, long End)> _ranges = DataRanges(source);
        private readonly CancellationTokenSource _stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        private readonly Lock _lock = new();
        // The next chunk: the range it lies in and its offset (not a list of chunks: a hostile image's data ranges
        // can be long, and the copy must not allocate in proportion to what it claims).
        private int _range;
        private long _cursor;
        private long _total, _done, _written;
        private Exception? _failure;
        private int _running;

        public TaskCompletionSource<long> Result { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Start(int workers)
        {
            _cursor = _ranges.Count > 0 ? _ranges[0].Start : 0;
            _total = _ranges.Sum(r => r.End - r.Start);
            progress?.Report(new CopyProgress(0, _total, 0));
            _running = workers;
            for (int w = 0; w < workers; w++)
            {
                ImageReader? reader = null;
                try
                {
                    reader = w == 0 ? source : source.Fork();
                    new Thread(Run) { IsBackground = true, Name = "edgeblock image copy" }.Start(reader);
                }
                catch (Exception e)
                {
                    if (reader != null && reader != source) reader.Dispose();
                    Fail(e); // a fork or a thread could not be made: the workers already started stop
                    Ended();
                }
            }
        }

        private void Run(object? state)
        {
            var reader = (ImageReader)state!;
            try
            {
                byte[] buffer = GC.AllocateUninitializedArray<byte>(ChunkBytes);
                while (TryNextChunk(out long offset, out int length))
                {
                    _stop.Token.ThrowIfCancellationRequested();
                    reader.Read(offset, buffer.AsSpan(0, length));
                    long runBytes = 0;
                    foreach ((int start, int runLength) in NonZeroRuns(buffer.AsSpan(0, length)))
                    {
                        ValueTask pending = write(offset + start, buffer.AsMemory(start, runLength), _stop.Token);
                        if (pending.IsCompletedSuccessfully) pending.GetAwaiter().GetResult();
                        else pending.AsTask().GetAwaiter().GetResult(); // this thread waits; the buffer stays in use until then
                        runBytes += runLength;
                    }
                    lock (_lock)
                    {
                        _done += length;
                        _written += runBytes;
                        progress?.Report(new CopyProgress(_done, _total, _written));
                    }
                }
            }
            catch (Exception e)
            {
                Fail(e);
            }
            finally
            {
                if (reader != source) reader.Dispose();
                Ended();
            }
        }

        private bool TryNextChunk(out long offset, out int length)
        {
            lock (_lock)
            {
                while (_range < _ranges.Count && _cursor >= _ranges[_range].End)
                    if (++_range < _ranges.Count) _cursor = _ranges[_range].Start;
                offset = _cursor;
                length = _range < _ranges.Count ? (int)Math.Min(ChunkBytes, _ranges[_range].End - _cursor) : 0;
                _cursor += length;
                return length > 0;
            }
        }

        /// <summary>Keeps the first failure that is not a cancel it caused, and stops the other workers.</summary>
        private void Fail(Exception e)
        {
            lock (_lock)
                if (_failure == null || (_failure is OperationCanceledException && e is not OperationCanceledException)) _failure = e;
            _stop.Cancel();
        }

        private void Ended()
        {
            if (Interlocked.Decrement(ref _running) != 0) return;
            _stop.Dispose();
            if (_failure is OperationCanceledException) Result.SetCanceled(cancel);
            else if (_failure != null) Result.SetException(_failure);
            else Result.SetResult(_written);
        }
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
