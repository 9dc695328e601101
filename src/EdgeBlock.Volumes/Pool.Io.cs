using System.Runtime.CompilerServices;
using EdgeBlock.Storage;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Volumes;

/// <summary>
/// The slow paths of volume I/O: mapping a new extent, copy-on-write of a shared one, and
/// deallocation. The fast path (reads, writes to an extent the volume owns alone) is in
/// <see cref="VolumeDevice"/> and takes no lock.
/// </summary>
public sealed partial class Pool
{
    /// <summary>Maps a fresh extent at index for a first write; its blocks read as zeroes until written.</summary>
    internal BlockStatus MapNewExtent(Volume v, long index)
    {
        lock (MetaLock)
        {
            if (v.Map[index] is not null) return BlockStatus.Success;
            if (v.Deleted) return BlockStatus.NotReady;
            if (!CanAllocate(v, newMapping: true)) return RefuseSpace(v);
            var (drive, extent) = TakeExtent();
            InstallNew(v, index, new ExtentMapEntry(drive.Index, extent, ExtentSize), drive);
            return BlockStatus.Success;
        }
    }

    private BlockStatus RefuseSpace(Volume v)
    {
        long count = Interlocked.Increment(ref _capacityExceeded);
        if (Environment.TickCount64 - v.LastSpaceWarning > 10_000)
        {
            v.LastSpaceWarning = Environment.TickCount64;
            string why = v.Record.Group is { } g && _groups.TryGetValue(g, out GroupState? group) && group.Record.QuotaBytes is long q
                && group.UsedBytes(ExtentSize) + (v.UsesChunks ? ChunkLayout.ChunkSize : ExtentSize) > q
                ? $"group {g} is at its quota of {q} bytes"
                : $"the pool has no unreserved free space ({_freeExtents} free extents, {UnusedReserveTotal()} held by reservations)";
            _logger.LogWarning("pool {Pool}: write to volume {Volume} refused with Capacity Exceeded: {Why} ({Count} refusals so far)", Name, v.Name, why, count);
        }
        return BlockStatus.CapacityExceeded;
    }

    /// <summary>
    /// Writes into an extent shared with a snapshot or clone: copies its valid blocks to a new
    /// extent with the new data laid over, then points this volume at the copy. Retry = true
    /// when the map changed meanwhile and the caller must look again.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    internal async ValueTask<(BlockStatus Status, bool Retry)> CopyOnWriteAsync(Volume v, long index, int offsetInExtent, ReadOnlyMemory<byte> data)
    {
        await v.CowGate.WaitAsync().ConfigureAwait(false);
        try
        {
            ExtentMapEntry? old = v.Map[index];
            if (old is null || Volatile.Read(ref DriveAt(old.Drive).Refs[old.Physical]) <= 1) return (BlockStatus.Success, true);
            PoolDrive drive;
            long target;
            lock (MetaLock)
            {
                if (!CanAllocate(v, newMapping: false)) return (RefuseSpace(v), false);
                (drive, target) = TakeExtent();
            }
            v.CowBuffer ??= new AlignedBuffer(ExtentSize);
            Memory<byte> buffer = v.CowBuffer.Memory;
            var copy = new ExtentMapEntry(drive.Index, target, ExtentSize);
            Interlocked.Increment(ref old.InFlight);
            BlockStatus status;
            try
            {
                for (int i = 0; i < copy.Valid.Length; i++) copy.Valid[i] = Volatile.Read(ref old.Valid[i]);
                status = await ReadValidAsync(old, 0, buffer).ConfigureAwait(false);
            }
            finally
            {
                Interlocked.Decrement(ref old.InFlight);
            }
            if (status == BlockStatus.Success)
            {
                data.CopyTo(buffer[offsetInExtent..]);
                status = await drive.Device.WriteAsync(drive.Lba(target, 0), buffer, fua: false).ConfigureAwait(false);
            }
            lock (MetaLock)
            {
                if (status != BlockStatus.Success || !ReferenceEquals(v.Map[index], old))
                {
                    GiveBackUnused(drive, target);
                    return (status, status == BlockStatus.Success);
                }
                copy.SetValid(offsetInExtent / PoolLayout.BlockSize, data.Length / PoolLayout.BlockSize);
                AddRef(drive, target);
                v.Map.Set(index, copy);
                v.MarkDirty(index, copy);
                DropRef(DriveAt(old.Drive), old);
                _copyOnWrites++;
            }
            return (BlockStatus.Success, false);
        }
        finally
        {
            v.CowGate.Release();
        }
    }

    /// <summary>Reads the part of an extent at offset into destination: valid blocks from the drive, the rest zeroes.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    internal async ValueTask<BlockStatus> ReadValidAsync(ExtentMapEntry entry, int offsetInExtent, Memory<byte> destination)
    {
        PoolDrive drive = DriveAt(entry.Drive);
        int first = offsetInExtent / PoolLayout.BlockSize, count = destination.Length / PoolLayout.BlockSize;
        int block = first;
        while (block < first + count)
        {
            bool valid = entry.IsValid(block);
            int run = 1;
            while (block + run < first + count && entry.IsValid(block + run) == valid) run++;
            Memory<byte> part = destination.Slice((block - first) * PoolLayout.BlockSize, run * PoolLayout.BlockSize);
            if (valid)
            {
                BlockStatus status = await drive.Device.ReadAsync(drive.Lba(entry.Physical, (long)block * PoolLayout.BlockSize), part).ConfigureAwait(false);
                if (status != BlockStatus.Success) return status;
            }
            else
            {
                part.Span.Clear();
            }
            block += run;
        }
        return BlockStatus.Success;
    }

    /// <summary>Makes a block range read as zeroes; extents left without valid blocks are unmapped (freed once unshared).</summary>
    internal void Deallocate(Volume v, long offset, long length)
    {
        lock (MetaLock)
        {
            // Mapped extents only: a discard of a whole large volume (mkfs does one) visits what is mapped, not every extent.
            long end = offset + length;
            for (long index = offset / ExtentSize; v.Map.Next(ref index) is { } entry; index++)
            {
                long start = Math.Max(offset, index * ExtentSize);
                if (start >= end) break;
                int inExtent = (int)(start - index * ExtentSize);
                int len = (int)Math.Min(ExtentSize - inExtent, end - start);
                bool changed = entry.ClearValid(inExtent / PoolLayout.BlockSize, len / PoolLayout.BlockSize);
                if (entry.NoneValid() && UnmapIfIdle(v, index, entry)) continue;
                if (changed) v.MarkDirty(index, entry);
            }
        }
    }

    /// <summary>Marks blocks written; true when the map changed (a FUA write must then commit).</summary>
    internal static bool MarkWritten(Volume v, long index, ExtentMapEntry entry, int offsetInExtent, int length)
    {
        if (!entry.SetValid(offsetInExtent / PoolLayout.BlockSize, length / PoolLayout.BlockSize)) return false;
        v.MarkDirty(index, entry);
        return true;
    }

    internal bool IsShared(ExtentMapEntry entry) => Volatile.Read(ref DriveAt(entry.Drive).Refs[entry.Physical]) > 1;
}
