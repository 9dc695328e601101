namespace EdgeBlock.Storage;

/// <summary>
/// A sparse device in memory, for tests: data lives in 64 KiB chunks allocated on first
/// write; never-written and deallocated ranges read as zeroes. The chunk table is lock-free
/// (chunks are published with compare-exchange), so queues working on different ranges never
/// wait for each other. Concurrent commands on overlapping ranges may interleave, as on a disk.
/// </summary>
public sealed class MemoryBlockDevice : IBlockDevice
{
    public const int ChunkSize = 64 * 1024;

    private readonly BlockGeometry _geometry;
    // The table costs 8 bytes per chunk (128 MiB per TiB of capacity), which is fine for tests.
    private readonly byte[]?[] _chunks;
    private long _allocatedChunks;
    private volatile bool _disposed;

    public MemoryBlockDevice(long sizeBytes, int blockSize = 512)
    {
        _geometry = new BlockGeometry(sizeBytes, blockSize);
        long chunkCount = (sizeBytes + ChunkSize - 1) / ChunkSize;
        if (chunkCount > Array.MaxLength)
        {
            throw new ArgumentOutOfRangeException(nameof(sizeBytes), sizeBytes,
                $"A memory device holds at most {(long)Array.MaxLength * ChunkSize} bytes.");
        }
        _chunks = new byte[]?[chunkCount];
    }

    public int BlockSize => _geometry.BlockSize;

    public long BlockCount => _geometry.BlockCount;

    public bool SupportsDeallocate => true;

    /// <summary>Memory held for data: whole chunks that have been written and not freed since.</summary>
    public long AllocatedBytes => Interlocked.Read(ref _allocatedChunks) * ChunkSize;

    public ValueTask<BlockStatus> ReadAsync(long lba, Memory<byte> buffer)
    {
        BlockStatus status = CheckTransfer(lba, buffer.Length);
        if (status != BlockStatus.Success)
        {
            return new ValueTask<BlockStatus>(status);
        }

        Span<byte> destination = buffer.Span;
        foreach (ChunkSlice slice in new ChunkSlices(lba * BlockSize, buffer.Length))
        {
            Span<byte> part = destination.Slice((int)slice.RelativeOffset, slice.Length);
            byte[]? chunk = Volatile.Read(ref _chunks[slice.Index]);
            if (chunk is null)
            {
                part.Clear();
            }
            else
            {
                chunk.AsSpan(slice.OffsetInChunk, slice.Length).CopyTo(part);
            }
        }
        return new ValueTask<BlockStatus>(BlockStatus.Success);
    }

    /// <summary>Memory is as durable as it gets here, so FUA needs nothing extra.</summary>
    public ValueTask<BlockStatus> WriteAsync(long lba, ReadOnlyMemory<byte> data, bool fua)
    {
        BlockStatus status = CheckTransfer(lba, data.Length);
        if (status != BlockStatus.Success)
        {
            return new ValueTask<BlockStatus>(status);
        }

        ReadOnlySpan<byte> source = data.Span;
        foreach (ChunkSlice slice in new ChunkSlices(lba * BlockSize, data.Length))
        {
            source.Slice((int)slice.RelativeOffset, slice.Length)
                .CopyTo(GetOrAllocateChunk(slice.Index).AsSpan(slice.OffsetInChunk, slice.Length));
        }
        return new ValueTask<BlockStatus>(BlockStatus.Success);
    }

    public ValueTask<BlockStatus> FlushAsync() =>
        new(_disposed ? BlockStatus.NotReady : BlockStatus.Success);

    /// <summary>Frees the chunks the range covers whole and zeroes the rest, with or without deallocate.</summary>
    public ValueTask<BlockStatus> WriteZeroesAsync(long lba, long blockCount, bool deallocate) => Zero(lba, blockCount);

    public ValueTask<BlockStatus> DeallocateAsync(long lba, long blockCount) => Zero(lba, blockCount);

    public ValueTask DisposeAsync()
    {
        _disposed = true;
        Array.Clear(_chunks);
        Interlocked.Exchange(ref _allocatedChunks, 0);
        return ValueTask.CompletedTask;
    }

    private ValueTask<BlockStatus> Zero(long lba, long blockCount)
    {
        BlockStatus status = _disposed ? BlockStatus.NotReady : _geometry.CheckRange(lba, blockCount);
        if (status != BlockStatus.Success)
        {
            return new ValueTask<BlockStatus>(status);
        }

        foreach (ChunkSlice slice in new ChunkSlices(lba * BlockSize, blockCount * BlockSize))
        {
            if (slice.Length == ChunkLength(slice.Index))
            {
                if (Interlocked.Exchange(ref _chunks[slice.Index], null) is not null)
                {
                    Interlocked.Decrement(ref _allocatedChunks);
                }
            }
            else
            {
                Volatile.Read(ref _chunks[slice.Index])?.AsSpan(slice.OffsetInChunk, slice.Length).Clear();
            }
        }
        return new ValueTask<BlockStatus>(BlockStatus.Success);
    }

    private BlockStatus CheckTransfer(long lba, int lengthBytes) =>
        _disposed ? BlockStatus.NotReady : _geometry.CheckTransfer(lba, lengthBytes);

    private byte[] GetOrAllocateChunk(int index)
    {
        byte[]? chunk = Volatile.Read(ref _chunks[index]);
        if (chunk is not null)
        {
            return chunk;
        }

        // Two writers may race to allocate the same chunk; the first to publish wins and the
        // loser writes into the winner's chunk.
        byte[] fresh = new byte[ChunkLength(index)];
        chunk = Interlocked.CompareExchange(ref _chunks[index], fresh, null);
        if (chunk is not null)
        {
            return chunk;
        }
        Interlocked.Increment(ref _allocatedChunks);
        return fresh;
    }

    /// <summary>The last chunk is shorter when the size is not a multiple of <see cref="ChunkSize"/>.</summary>
    private int ChunkLength(int index) => (int)Math.Min(ChunkSize, _geometry.SizeBytes - (long)index * ChunkSize);

    /// <summary>The part of one chunk that a byte range covers.</summary>
    private readonly record struct ChunkSlice(int Index, int OffsetInChunk, int Length, long RelativeOffset);

    /// <summary>Splits a byte range at chunk boundaries; a struct enumerator so the I/O path allocates nothing.</summary>
    private struct ChunkSlices
    {
        private readonly long _start;
        private readonly long _end;
        private long _position;

        public ChunkSlices(long offset, long length)
        {
            _start = offset;
            _end = offset + length;
            _position = offset;
        }

        public ChunkSlice Current { get; private set; }

        public readonly ChunkSlices GetEnumerator() => this;

        public bool MoveNext()
        {
            if (_position >= _end)
            {
                return false;
            }
            int offsetInChunk = (int)(_position % ChunkSize);
            int sliceLength = (int)Math.Min(ChunkSize - offsetInChunk, _end - _position);
            Current = new ChunkSlice((int)(_position / ChunkSize), offsetInChunk, sliceLength, _position - _start);
            _position += sliceLength;
            return true;
        }
    }
}
