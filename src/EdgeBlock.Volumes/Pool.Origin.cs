using System.Diagnostics;
using EdgeBlock.Storage;
using Microsoft.Extensions.Logging;
using RocksDbSharp;

namespace EdgeBlock.Volumes;

/// <summary>
/// Volumes attached to an origin (instant boot from a VM image): the volume exists at once and reads what it has not
/// resolved from the origin (<see cref="OriginVolumeDevice"/>); a background copy resolves the rest at a bounded share
/// of the drives' time and then drops the origin. The origin's record and its resolved-block bitmap are pool metadata,
/// committed in the same batches as the map, so a restart resumes the copy where the last commit left it and a flushed
/// write is never shadowed by the origin again. A snapshot (and so a clone) or a shrink of an attached volume is
/// refused until its copy is done: the snapshot would have to share the origin too.
/// </summary>
public sealed partial class Pool
{
    private readonly List<(long VolumeId, long Pages)> _droppedOrigins = [];

    /// <summary>
    /// Creates a volume whose unwritten blocks read from origin (its record is what a later open checks the origin
    /// against); the volume and its origin are durable together when this returns. The pool owns origin from then on,
    /// also when it refuses (then it is closed).
    /// </summary>
    public async Task<VolumeInfo> AttachVolumeAsync(string name, long sizeBytes, string? group, IVolumeOrigin origin, VolumeOriginRecord record,
        VolumeFeatures? features = null, VolumeKeySource? key = null)
    {
        try
        {
            if (record.LengthBytes != origin.Length || record.LengthBytes <= 0)
                throw new VolumeException(VolumeError.Invalid, $"volume {Name}/{name}: the origin's length {origin.Length} differs from its record's {record.LengthBytes}");
            if (sizeBytes < record.LengthBytes)
                throw new VolumeException(VolumeError.Invalid, $"volume {Name}/{name}: size {sizeBytes} bytes is smaller than its origin ({record.LengthBytes} bytes, {record.Path})");
            // The copy's bitmap is in memory until the copy is done (32 MiB per TiB): an image's claimed size must not exhaust it.
            long bitmap = OriginState.BitmapBytes(record.LengthBytes), limit = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 16;
            if (bitmap > limit)
                throw new VolumeException(VolumeError.Invalid,
                    $"volume {Name}/{name}: attaching {record.Path} ({record.LengthBytes} bytes) needs {bitmap} bytes of memory to follow its copy, more than a sixteenth of the daemon's memory ({limit} bytes); import it instead");
            return await CreateVolumeCoreAsync(name, sizeBytes, 0, group, features ?? VolumeFeatures.None, key, (record, origin)).ConfigureAwait(false);
        }
        catch
        {
            bool installed;
            lock (MetaLock) installed = _volumes.TryGetValue(name, out Volume? v) && ReferenceEquals(v.Origin?.Source, origin);
            if (!installed) origin.Dispose();
            throw;
        }
    }

    /// <summary>Names of the volumes whose origin copy is not done (the daemon resumes their copies at start).</summary>
    public IReadOnlyList<string> AttachedVolumes()
    {
        lock (MetaLock) return _volumes.Values.Where(v => v.Origin is not null).Select(v => v.Name).Order(StringComparer.Ordinal).ToList();
    }

    /// <summary>The device of a volume: straight to its store, or through its origin while one is attached (under the metadata lock).</summary>
    private IBlockDevice DeviceOf(Volume v) => v.Origin is { } origin ? new OriginVolumeDevice(this, origin, StoreOf(v)) : StoreOf(v);

    private VolumeDeviceBase StoreOf(Volume v) => v.UsesChunks ? new ChunkVolumeDevice(this, v) : new VolumeDevice(this, v);

    /// <summary>
    /// Opens an attached volume's origin before its first open after the pool opened, checked against its record by
    /// <see cref="PoolOptions.OpenOrigin"/> (outside the lock: it may hash the file). A missing or changed origin keeps
    /// the volume closed, naming why; the pool and the other volumes go on.
    /// </summary>
    private void OpenOriginIfAttached(string name)
    {
        VolumeOriginRecord record;
        lock (MetaLock)
        {
            if (Find(name).Origin is not { Source: null } origin) return;
            record = origin.Record;
        }
        IVolumeOrigin source;
        try
        {
            source = _options.OpenOrigin?.Invoke(record)
                ?? throw new VolumeException(VolumeError.Invalid, $"this daemon cannot open origins ({record.Path})");
        }
        catch (VolumeException e)
        {
            string problem = $"volume {Name}/{name} stays closed: its origin {record.Path} cannot be used: {e.Message}";
            lock (MetaLock)
            {
                if (Find(name).Origin is { } origin) origin.Problem = e.Message;
            }
            _logger.LogError("pool {Pool}: {Problem}", Name, problem);
            throw new VolumeException(e.Error, problem, e);
        }
        lock (MetaLock)
        {
            if (Find(name).Origin is { Source: null } origin)
            {
                origin.Source = source;
                origin.Problem = null;
                return;
            }
        }
        source.Dispose(); // opened twice at once, or the copy finished meanwhile
    }

    /// <summary>
    /// Copies what an attached volume has not resolved from its origin, 1 MiB at a time in order (each unit under the
    /// stripe guest writes to it take, so a guest write is never overwritten), sleeping after each unit so the copy keeps
    /// the drives busy ioShare of the time; then checks the origin did not change and drops it. Cancelling stops it;
    /// what it resolved stays (saved by the next commit) and a later copy goes on from there.
    /// </summary>
    public async Task CopyOriginAsync(string name, double ioShare, IProgress<OriginCopyProgress>? progress, CancellationToken cancel)
    {
        if (ioShare is <= 0 or > 1) throw new VolumeException(VolumeError.Invalid, $"volume {Name}/{name}: copy I/O share {ioShare} must be above 0 and at most 1");
        OpenOriginIfAttached(name);
        Volume v;
        OriginState o;
        IBlockDevice store;
        lock (MetaLock)
        {
            v = Find(name);
            if (v.Origin is not { } attached) return;
            if (attached.Copying) throw new VolumeException(VolumeError.Busy, $"volume {Name}/{name}: its origin copy already runs");
            o = attached;
            o.Copying = true;
            // Not counted as an open (it is not an export) and never disposed: deleting the volume is refused while copying.
            store = StoreOf(v);
        }
        try
        {
            long total = o.Record.LengthBytes, written = 0;
            progress?.Report(new OriginCopyProgress(Copied(o), total, 0));
            _logger.LogInformation("pool {Pool}: volume {Volume}: copy from origin {Path} {How} at {Copied} of {Total} bytes", Name, name, o.Record.Path,
                o.Resolved > 0 ? "resumed" : "started", Copied(o), total);
            using var buffer = new AlignedBuffer(OriginState.UnitBlocks * PoolLayout.BlockSize);
            for (long first = 0; first < o.Blocks; first += OriginState.UnitBlocks)
            {
                cancel.ThrowIfCancellationRequested();
                long count = Math.Min(OriginState.UnitBlocks, o.Blocks - first);
                if (o.AllResolved(first, count)) continue;
                long began = Stopwatch.GetTimestamp();
                written += await CopyUnitAsync(v, o, store, first, count, buffer.Memory).ConfigureAwait(false);
                TimeSpan took = Stopwatch.GetElapsedTime(began);
                progress?.Report(new OriginCopyProgress(Copied(o), total, written));
                // Busy for `took`, idle for took × (1 − share) / share: the guests keep the rest of the drives' time.
                if (ioShare < 1) await Task.Delay(took * ((1 - ioShare) / ioShare), cancel).ConfigureAwait(false);
            }
            await DropOriginAsync(v, o).ConfigureAwait(false);
            progress?.Report(new OriginCopyProgress(total, total, written));
        }
        finally
        {
            lock (MetaLock) o.Copying = false;
        }
    }

    private static long Copied(OriginState o) => Math.Min(Interlocked.Read(ref o.Resolved) * PoolLayout.BlockSize, o.Record.LengthBytes);

    /// <summary>Copies the unresolved blocks of one unit holding its stripe; answers the bytes written.</summary>
    private async Task<long> CopyUnitAsync(Volume v, OriginState o, IBlockDevice store, long first, long count, Memory<byte> buffer)
    {
        SemaphoreSlim stripe = o.StripeOf(first);
        await stripe.WaitAsync().ConfigureAwait(false);
        try
        {
            long written = 0;
            for (long block = first; block < first + count;)
            {
                long n = o.Run(block, first + count - block, out bool resolved);
                if (!resolved)
                {
                    written += await CopyRunAsync(v, o.Source!, store, block, n, buffer).ConfigureAwait(false);
                    o.Resolve(block, n);
                }
                block += n;
            }
            return written;
        }
        finally
        {
            stripe.Release();
        }
    }

    /// <summary>
    /// Copies blocks [block, block + n): the origin's data ranges are read and their non-zero blocks written, the rest
    /// discarded — the volume may hold a write that never became durable before a crash, and what reads as the
    /// origin's zeroes must stay zeroes once resolved.
    /// </summary>
    private async Task<long> CopyRunAsync(Volume v, IVolumeOrigin source, IBlockDevice store, long block, long n, Memory<byte> buffer)
    {
        const int size = PoolLayout.BlockSize;
        long start = block * size, end = (block + n) * size, written = 0;
        for (long pos = start; pos < end;)
        {
            (bool data, long length) = source.Extent(pos, end - pos);
            long stop = data ? RoundUp(pos + length) : pos + length / size * size;
            if (!data && stop <= pos) (data, stop) = (true, RoundUp(pos + length)); // zeroes within a block that also holds data
            stop = Math.Min(stop, end);
            Memory<byte> part = buffer.Slice((int)(pos - start), (int)(stop - pos));
            BlockStatus status = data ? await source.ReadAsync(pos, part).ConfigureAwait(false) : BlockStatus.Success;
            if (status == BlockStatus.Success)
            {
                (status, long stored) = await StoreOriginBytesAsync(store, pos / size, part, data).ConfigureAwait(false);
                written += stored;
            }
            if (status != BlockStatus.Success)
                throw new VolumeException(VolumeError.Io, $"volume {Name}/{v.Name}: copying from its origin {v.Origin?.Record.Path} failed at byte {pos}: {status}");
            pos = stop;
        }
        return written;
    }

    /// <summary>
    /// Puts origin bytes (whole blocks from lba) into the volume: runs of non-zero blocks written, runs of zero blocks
    /// discarded (all of them when the origin said the range holds no data), so the volume stays thin. Answers the
    /// status and the bytes written. Used by the copy and by copy-on-read.
    /// </summary>
    internal static async ValueTask<(BlockStatus Status, long Written)> StoreOriginBytesAsync(IBlockDevice store, long lba, ReadOnlyMemory<byte> part, bool data)
    {
        const int size = PoolLayout.BlockSize;
        BlockStatus status = BlockStatus.Success;
        long written = 0;
        for (int at = 0; status == BlockStatus.Success && at < part.Length;)
        {
            bool zero = !data || !part.Span.Slice(at, size).ContainsAnyExcept((byte)0);
            int run = size;
            while (at + run < part.Length && (!data || !part.Span.Slice(at + run, size).ContainsAnyExcept((byte)0)) == zero) run += size;
            long block = lba + at / size;
            status = zero ? await store.DeallocateAsync(block, run / size).ConfigureAwait(false)
                : await store.WriteAsync(block, part.Slice(at, run), fua: false).ConfigureAwait(false);
            if (!zero) written += run;
            at += run;
        }
        return (status, written);
    }

    private static long RoundUp(long bytes) => (bytes + PoolLayout.BlockSize - 1) / PoolLayout.BlockSize * PoolLayout.BlockSize;

    /// <summary>
    /// Every block resolved: checks the origin is still what was attached (a copy from a changed file is not trusted),
    /// drops its records in one commit with the last copied blocks, then closes it once no read uses it.
    /// </summary>
    private async Task DropOriginAsync(Volume v, OriginState o)
    {
        Debug.Assert(o.AllDone, "the copy went over every unit");
        if (o.Source!.CheckUnchanged() is { } changed)
        {
            lock (MetaLock) o.Problem = $"changed during the copy: {changed}";
            _logger.LogError("pool {Pool}: volume {Volume}: origin {Path} changed during the copy ({Changed}); it stays attached", Name, v.Name, o.Record.Path, changed);
            throw new VolumeException(VolumeError.Io,
                $"volume {Name}/{v.Name}: its origin {o.Record.Path} changed during the copy ({changed}); the volume keeps it and stays closed at the next start until the original file is back");
        }
        lock (MetaLock)
        {
            if (!ReferenceEquals(v.Origin, o)) return;
            v.Origin = null;
            _droppedOrigins.Add((v.Id, o.Pages));
        }
        await CommitOrThrowAsync($"drop the origin of volume {v.Name}").ConfigureAwait(false);
        o.Done = true;
        while (Volatile.Read(ref o.Reads) != 0) await Task.Delay(1).ConfigureAwait(false);
        o.Source.Dispose();
        _logger.LogInformation("pool {Pool}: volume {Volume}: copy from origin {Path} done; the origin is dropped", Name, v.Name, o.Record.Path);
    }

    /// <summary>A deleted volume's origin: its records go with the next commit, and it is closed (no device is open). Under the metadata lock.</summary>
    private void DropOriginOfDeleted(Volume v)
    {
        if (v.Origin is not { } o) return;
        if (o.Copying) throw new VolumeException(VolumeError.Busy, $"volume {Name}/{v.Name}: its origin copy runs; stop it first");
        v.Origin = null;
        o.Done = true;
        _droppedOrigins.Add((v.Id, o.Pages));
        o.Source?.Dispose();
    }

    private void RefuseAttached(Volume v, string what)
    {
        if (v.Origin is { } o)
            throw new VolumeException(VolumeError.Busy,
                $"volume {Name}/{v.Name} still reads from its origin {o.Record.Path} ({Copied(o) * 100 / Math.Max(1, o.Record.LengthBytes)}% copied): {what} once the copy is done (see `edgeblock volume show`)");
    }

    private OriginCopyInfo? OriginInfo(Volume v) =>
        v.Origin is { } o ? new OriginCopyInfo(o.Record.Path, o.Record.LengthBytes, Copied(o), o.Copying, o.Problem) : null;

    private sealed record OriginCapture(List<(OriginState Origin, long Page)> Pages, List<OriginState> Records, List<(long VolumeId, long Pages)> Dropped);

    /// <summary>Origin records and dirty bitmap pages into the batch; dropped origins' keys deleted. Under the metadata lock.</summary>
    private OriginCapture CaptureOrigins(WriteBatch batch, ref long bytes)
    {
        var capture = new OriginCapture([], [], [.. _droppedOrigins]);
        foreach (Volume v in _volumes.Values)
        {
            if (v.Origin is not { } o) continue;
            if (o.RecordDirty)
            {
                byte[] key = MetadataKeys.OriginKey(v.Id), value = RecordJson.Encode(o.Record);
                batch.Put(key, value);
                bytes += key.Length + value.Length;
                o.RecordDirty = false;
                capture.Records.Add(o);
            }
            while (o.DirtyPages.TryDequeue(out long page))
            {
                byte[] key = MetadataKeys.OriginBitsKey(v.Id, page), value = o.EncodePage(page);
                batch.Put(key, value);
                bytes += key.Length + value.Length;
                capture.Pages.Add((o, page));
            }
        }
        foreach ((long id, long pages) in _droppedOrigins)
        {
            batch.Delete(MetadataKeys.OriginKey(id));
            for (long page = 0; page < pages; page++) batch.Delete(MetadataKeys.OriginBitsKey(id, page));
            bytes += 9 + pages * 17;
        }
        _droppedOrigins.Clear();
        return capture;
    }

    private bool OriginsDirty() => _droppedOrigins.Count > 0 || _volumes.Values.Any(v => v.Origin is { } o && (o.RecordDirty || !o.DirtyPages.IsEmpty));

    private void RestoreOrigins(OriginCapture c)
    {
        foreach (OriginState o in c.Records) o.RecordDirty = true;
        foreach ((OriginState o, long page) in c.Pages) o.Redirty(page);
        _droppedOrigins.AddRange(c.Dropped);
    }

    /// <summary>Origin records and their bitmap pages (after the volumes).</summary>
    private void LoadOrigins(Iterator it, Dictionary<long, Volume> byId)
    {
        for (it.Seek([MetadataKeys.Origin]); it.Valid() && it.GetKeySpan()[0] == MetadataKeys.Origin; it.Next())
        {
            long id = System.Buffers.Binary.BinaryPrimitives.ReadInt64BigEndian(it.GetKeySpan()[1..]);
            if (!byId.TryGetValue(id, out Volume? v))
                throw new VolumeException(VolumeError.Io, $"pool {Name}: origin record for volume {id} has no volume (run `edgeblock pool check {Name}`)");
            v.Origin = new OriginState(id, RecordJson.Decode<VolumeOriginRecord>(it.GetValueSpan()));
        }
        for (it.Seek([MetadataKeys.OriginBits]); it.Valid() && it.GetKeySpan()[0] == MetadataKeys.OriginBits; it.Next())
        {
            var (id, page) = MetadataKeys.ParseMapKey(it.GetKeySpan());
            if (!byId.TryGetValue(id, out Volume? v) || v.Origin is not { } o)
                throw new VolumeException(VolumeError.Io, $"pool {Name}: origin bitmap page {page} of volume {id} has no origin (run `edgeblock pool check {Name}`)");
            o.LoadPage(page, it.GetValueSpan());
        }
    }
}
