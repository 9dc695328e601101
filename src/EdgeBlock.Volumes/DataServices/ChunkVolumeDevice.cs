using System.IO.Hashing;
using System.Runtime.CompilerServices;
using EdgeBlock.Storage;

namespace EdgeBlock.Volumes;

/// <summary>
/// A chunk volume as a block device. Every write stores whole chunks at a new place
/// (redirect-on-write): merge with the chunk's current content when the write covers part of
/// it, compress, checksum, write to freshly allocated sectors, then swap the map slot. The old
/// place is released by the next commit, so after a crash the map on disk points at old or new
/// contents that were flushed before it was written — never at a torn mix, and a checksum never
/// disagrees with its data because of a crash. Reads verify the checksum and report a mismatch
/// as a read error (Unrecovered Read Error on the wire), never as data.
/// </summary>
internal sealed class ChunkVolumeDevice(Pool pool, Volume volume) : VolumeDeviceBase(pool, volume, ChunkLayout.ChunkSize)
{
    private static readonly ReadOnlyMemory<byte> Zeroes = new byte[ChunkLayout.ChunkSize];
    private readonly Pool _pool = pool;
    private readonly Volume _volume = volume;
    private readonly int _perGroup = pool.ChunksPerGroup;
    private readonly bool _checksum = volume.Features.Checksum;

    // ---- read ------------------------------------------------------------------------------

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    protected override async ValueTask<BlockStatus> ReadPieceAsync(long chunk, int inChunk, Memory<byte> destination)
    {
        ChunkGroup? group = _volume.Chunks[chunk / _perGroup];
        int i = (int)(chunk % _perGroup);
        while (true)
        {
            var (location, crc) = group is null ? default : group.Read(i);
            if (group is null || !location.IsMapped)
            {
                destination.Span.Clear();
                return BlockStatus.Success;
            }
            var (stale, status) = await ReadStoredAsync(group, i, chunk, location, crc, inChunk, destination).ConfigureAwait(false);
            // Replaced (and perhaps freed) since the slot was read: look again.
            if (!stale) return status;
        }
    }

    /// <summary>
    /// Reads the chunk stored at location (slot i of group), verifies and decodes it, and copies the part at inChunk
    /// into destination. Stale when the slot changed before the read (see <see cref="Pool.ReadStoredSectorsAsync"/>).
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<(bool Stale, BlockStatus Status)> ReadStoredAsync(
        ChunkGroup group, int i, long chunk, ChunkLocation location, uint crc, int inChunk, Memory<byte> destination)
    {
        bool whole = inChunk == 0 && destination.Length == ChunkLayout.ChunkSize;
        if (location.Codec == ChunkCodecKind.Raw && whole)
        {
            // Straight into the caller's buffer; cleared again if it fails its checksum.
            var (stale, direct) = await _pool.ReadStoredSectorsAsync(group, i, location, crc, destination).ConfigureAwait(false);
            if (stale || direct != BlockStatus.Success) return (stale, direct);
            if (!Verify(chunk, location, crc, destination.Span))
            {
                destination.Span.Clear();
                return (false, BlockStatus.ReadError);
            }
            _volume.Cipher?.Decrypt(destination.Span, destination.Span, FirstUnit(chunk));
            return (false, BlockStatus.Success);
        }
        AlignedBuffer stored = _pool.ChunkBuffers.Rent();
        AlignedBuffer? plain = null;
        try
        {
            var (stale, status) = await _pool.ReadStoredSectorsAsync(group, i, location, crc, stored.Memory).ConfigureAwait(false);
            if (stale || status != BlockStatus.Success) return (stale, status);
            Span<byte> sectors = stored.Span[..(location.Sectors * ChunkLayout.SectorSize)];
            if (!Verify(chunk, location, crc, sectors)) return (false, BlockStatus.ReadError);
            _volume.Cipher?.Decrypt(sectors, sectors, FirstUnit(chunk));
            ReadOnlySpan<byte> bytes = sectors[..location.Length];
            if (location.Codec == ChunkCodecKind.Raw)
            {
                bytes.Slice(inChunk, destination.Length).CopyTo(destination.Span);
                return (false, BlockStatus.Success);
            }
            Span<byte> target = whole ? destination.Span : (plain = _pool.ChunkBuffers.Rent()).Span;
            if (!ChunkCodec.Decompress(location.Codec, bytes, target))
            {
                if (whole) destination.Span.Clear();
                _pool.ReportBadChunk(_volume, chunk, location, "its stored bytes do not decompress");
                return (false, BlockStatus.ReadError);
            }
            if (!whole) target.Slice(inChunk, destination.Length).CopyTo(destination.Span);
            return (false, BlockStatus.Success);
        }
        finally
        {
            _pool.ChunkBuffers.Return(stored);
            if (plain is not null) _pool.ChunkBuffers.Return(plain);
        }
    }

    /// <summary>
    /// The XTS data unit of a chunk's first stored sector: its logical block number, so two equal
    /// blocks at different places encrypt differently, while a chunk shared by snapshots (same
    /// place in each) or moved by the compactor (bytes copied as they are) still decrypts.
    /// </summary>
    private static ulong FirstUnit(long chunk) => (ulong)chunk * ChunkLayout.SectorsPerChunk;

    /// <summary>Checks the crc32c of a chunk's stored sectors (what is on the drive: compressed, encrypted, padded).</summary>
    private bool Verify(long chunk, ChunkLocation location, uint crc, ReadOnlySpan<byte> stored)
    {
        if (!_checksum || Crc32C(stored) == crc) return true;
        _pool.ReportBadChunk(_volume, chunk, location, "checksum mismatch");
        return false;
    }

    private static uint Crc32C(ReadOnlySpan<byte> data) => Crc32.HashToUInt32(Crc32ParameterSet.Crc32C, data);

    // ---- write -----------------------------------------------------------------------------

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public override async ValueTask<BlockStatus> WriteAsync(long lba, ReadOnlyMemory<byte> data, bool fua)
    {
        BlockStatus status = Check(Geometry.CheckTransfer(lba, data.Length));
        long offset = lba * PoolLayout.BlockSize;
        PieceTasks pieces = default;
        for (int done = 0, count = 0; status == BlockStatus.Success && done < data.Length; count = 0)
        {
            // The chunks of a large write are stored in parallel (each under its own stripe).
            for (; count < PiecesInFlight && done < data.Length; count++)
            {
                int inChunk = (int)(offset % ChunkLayout.ChunkSize);
                int length = Math.Min(ChunkLayout.ChunkSize - inChunk, data.Length - done);
                pieces[count] = WriteChunkAsync(offset / ChunkLayout.ChunkSize, inChunk, data.Slice(done, length));
                offset += length;
                done += length;
            }
            status = await AwaitPiecesAsync(pieces, count).ConfigureAwait(false);
        }
        // A redirected write always changes the map: FUA makes the map durable with the data.
        // Overwrites that outrun the background commit wait for one, so the space their
        // replaced chunks hold stays bounded.
        if (status == BlockStatus.Success && (fua || (_pool.CommitsOnFreedSpace && Volatile.Read(ref _volume.PendingFreeSectors) > 2 * _pool.CommitAfterFreeSectors)))
        {
            status = await _pool.CommitAsync().ConfigureAwait(false);
        }
        return status;
    }

    /// <summary>Writes data at inChunk of one chunk (zeroes when data is <see cref="Zeroes"/>).</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<BlockStatus> WriteChunkAsync(long chunk, int inChunk, ReadOnlyMemory<byte> data)
    {
        SemaphoreSlim stripe = _volume.Stripes[chunk & (_volume.Stripes.Length - 1)];
        await stripe.WaitAsync().ConfigureAwait(false);
        AlignedBuffer? merged = null;
        try
        {
            long index = chunk / _perGroup;
            int i = (int)(chunk % _perGroup);
            ChunkGroup group = _volume.Chunks[index] ?? _pool.GroupFor(_volume, index);
            var (old, oldCrc) = group.Read(i);
            ReadOnlyMemory<byte> content = data;
            if (data.Length < ChunkLayout.ChunkSize)
            {
                // Part of a chunk: merge with what is there. Holding the stripe, nobody can replace
                // (and so release) the old place while it is read: the read is never stale.
                merged = _pool.ChunkBuffers.Rent();
                if (old.IsMapped)
                {
                    var (_, read) = await ReadStoredAsync(group, i, chunk, old, oldCrc, 0, merged.Memory).ConfigureAwait(false);
                    if (read != BlockStatus.Success) return read;
                }
                else
                {
                    merged.Span.Clear();
                }
                data.Span.CopyTo(merged.Span[inChunk..]);
                content = merged.Memory;
            }
            return await StoreAsync(group, chunk, old, content).ConfigureAwait(false);
        }
        finally
        {
            if (merged is not null) _pool.ChunkBuffers.Return(merged);
            stripe.Release();
        }
    }

    /// <summary>
    /// Stores a whole chunk's content at a new place and swaps the map slot to it (under the
    /// chunk's stripe): compress, encrypt, checksum the stored sectors, write, install.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<BlockStatus> StoreAsync(ChunkGroup group, long chunk, ChunkLocation old, ReadOnlyMemory<byte> content)
    {
        long index = chunk / _perGroup;
        int i = (int)(chunk % _perGroup);
        if (!content.Span.ContainsAnyExcept((byte)0))
        {
            // All zeroes: nothing to store; the chunk reads as zeroes unmapped.
            if (old.IsMapped) Install(group, index, i, old, default, 0);
            return BlockStatus.Success;
        }
        AlignedBuffer? scratch = null;
        try
        {
            ReadOnlyMemory<byte> stored = content;
            ChunkCodecKind codec = ChunkCodecKind.Raw;
            int length = ChunkLayout.ChunkSize;
            if (_volume.Features.Compression != VolumeCompression.Off)
            {
                scratch = _pool.ChunkBuffers.Rent();
                (codec, length) = _volume.Codec!.Compress(content.Span, scratch.Span);
                if (codec != ChunkCodecKind.Raw)
                {
                    int padded = ChunkLayout.SectorsFor(length) * ChunkLayout.SectorSize;
                    scratch.Span[length..padded].Clear();
                    stored = scratch.Memory[..padded];
                }
            }
            if (_volume.Cipher is { } cipher)
            {
                // After compression (ciphertext does not compress); never over the caller's buffer.
                scratch ??= _pool.ChunkBuffers.Rent();
                cipher.Encrypt(stored.Span, scratch.Span[..stored.Length], FirstUnit(chunk));
                stored = scratch.Memory[..stored.Length];
            }
            uint crc = _checksum ? Crc32C(stored.Span) : 0;
            int sectors = ChunkLayout.SectorsFor(length);
            BlockStatus status = _pool.AllocateChunk(_volume, sectors, out int drive, out long sector);
            if (status != BlockStatus.Success) return status;
            var location = ChunkLocation.Create(drive, sector, length, codec);
            status = await _pool.DriveAt(drive).Device.WriteAsync(_pool.ChunkLba(location), stored, fua: false).ConfigureAwait(false);
            if (status != BlockStatus.Success)
            {
                _pool.ReleaseUnwritten(_volume, drive, sector, sectors);
                return status;
            }
            Install(group, index, i, old, location, crc);
            return BlockStatus.Success;
        }
        finally
        {
            if (scratch is not null) _pool.ChunkBuffers.Return(scratch);
        }
    }

    private void Install(ChunkGroup group, long index, int i, ChunkLocation old, ChunkLocation location, uint crc)
    {
        group.Write(i, location, crc);
        // Dirty before the drop: the commit that releases the old place also carries the new slot.
        if (group.MarkDirty(i)) _volume.DirtyGroups.Enqueue(index);
        long sectors = location.IsMapped ? location.Sectors : 0;
        if (old.IsMapped)
        {
            _volume.Drops.Enqueue(old.Packed);
            sectors -= old.Sectors;
            // Replaced chunks hold their space until a commit: commit early when they add up.
            if (Interlocked.Add(ref _volume.PendingFreeSectors, old.Sectors) > _pool.CommitAfterFreeSectors) _pool.RequestCommit();
            _volume.ChargedGroup?.TryCharge(-(long)old.Sectors * ChunkLayout.SectorSize, _pool.ExtentSize);
        }
        Interlocked.Add(ref _volume.StoredSectors, sectors);
        Interlocked.Add(ref _volume.MappedChunks, (location.IsMapped ? 1 : 0) - (old.IsMapped ? 1 : 0));
    }

    /// <summary>Deallocated blocks read as zeroes at once: whole chunks are unmapped, partial ones rewritten with zeroes.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public override async ValueTask<BlockStatus> DeallocateAsync(long lba, long blockCount)
    {
        BlockStatus status = Check(Geometry.CheckRange(lba, blockCount));
        long offset = lba * PoolLayout.BlockSize, end = offset + blockCount * PoolLayout.BlockSize;
        while (status == BlockStatus.Success && offset < end)
        {
            long chunk = offset / ChunkLayout.ChunkSize;
            int inChunk = (int)(offset % ChunkLayout.ChunkSize);
            int length = (int)Math.Min(ChunkLayout.ChunkSize - inChunk, end - offset);
            long next = chunk / _perGroup;
            if (_volume.Chunks[next] is null)
            {
                // Never written: skip to the next group that was (a discard of a whole large volume visits what is mapped).
                offset = _volume.Chunks.Next(ref next) is null ? end : Math.Min(end, next * _pool.ExtentSize);
                continue;
            }
            status = await WriteChunkAsync(chunk, inChunk, Zeroes[..length]).ConfigureAwait(false);
            offset += length;
        }
        return status;
    }
}
