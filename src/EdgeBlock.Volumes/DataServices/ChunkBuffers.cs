using System.Collections.Concurrent;
using EdgeBlock.Storage;

namespace EdgeBlock.Volumes;

/// <summary>
/// Chunk-sized, page-aligned scratch buffers for merging, compressing and verifying chunks,
/// shared by a pool's chunk volumes and kept between uses (no allocation per I/O once warm).
/// At most as many exist as chunk I/Os ever ran at once.
/// </summary>
internal sealed class ChunkBuffers : IDisposable
{
    private readonly ConcurrentQueue<AlignedBuffer> _free = new();
    private int _created;

    public int Created => Volatile.Read(ref _created);

    public AlignedBuffer Rent()
    {
        if (_free.TryDequeue(out AlignedBuffer? buffer)) return buffer;
        Interlocked.Increment(ref _created);
        return new AlignedBuffer(ChunkLayout.ChunkSize);
    }

    public void Return(AlignedBuffer buffer) => _free.Enqueue(buffer);

    public void Dispose()
    {
        while (_free.TryDequeue(out AlignedBuffer? buffer)) ((IDisposable)buffer).Dispose();
    }
}
