using EdgeBlock.Storage;

namespace EdgeBlock.Volumes.Tests;

/// <summary>
/// A drive in memory that models a volatile write cache: a write lands in the cache; a flush
/// (or FUA) makes it durable. <see cref="Crash"/> simulates power loss: every 4 KiB sector
/// written since its last flush independently ends up with its durable content or with any
/// of the versions written to it since (dropped, reordered and torn writes).
/// Dispose does not lose the content: a pool can close and reopen the same drive.
/// </summary>
internal sealed class CrashableDrive(long sizeBytes) : IBlockDevice
{
    private const int Sector = 4096;
    private readonly byte[] _durable = new byte[sizeBytes];
    private readonly Dictionary<long, List<byte[]>> _cached = [];
    private readonly object _lock = new();

    public int BlockSize => Sector;
    public long BlockCount => sizeBytes / Sector;
    public bool SupportsDeallocate => false;
    public int FlushCount;
    public bool FailWrites;

    /// <summary>Runs before every read (slow drives in tests).</summary>
    public Action? BeforeRead;

    public ValueTask<BlockStatus> ReadAsync(long lba, Memory<byte> buffer)
    {
        BeforeRead?.Invoke();
        if (lba < 0 || lba * Sector + buffer.Length > sizeBytes) return new(BlockStatus.OutOfRange);
        lock (_lock)
        {
            for (int i = 0; i < buffer.Length / Sector; i++)
            {
                long sector = lba + i;
                ReadOnlySpan<byte> source = _cached.TryGetValue(sector, out var versions) ? versions[^1] : _durable.AsSpan((int)(sector * Sector), Sector);
                source.CopyTo(buffer.Span.Slice(i * Sector, Sector));
            }
        }
        return new(BlockStatus.Success);
    }

    /// <summary>Awaited before every write lands (a test holds writes in flight with it).</summary>
    public Func<Task>? BeforeWrite;

    public ValueTask<BlockStatus> WriteAsync(long lba, ReadOnlyMemory<byte> data, bool fua) =>
        BeforeWrite is { } hold ? HeldWriteAsync(hold, lba, data, fua) : Write(lba, data, fua);

    private async ValueTask<BlockStatus> HeldWriteAsync(Func<Task> hold, long lba, ReadOnlyMemory<byte> data, bool fua)
    {
        await hold();
        return await Write(lba, data, fua);
    }

    private ValueTask<BlockStatus> Write(long lba, ReadOnlyMemory<byte> data, bool fua)
    {
        if (lba < 0 || lba * Sector + data.Length > sizeBytes) return new(BlockStatus.OutOfRange);
        if (FailWrites) return new(BlockStatus.WriteError);
        lock (_lock)
        {
            for (int i = 0; i < data.Length / Sector; i++)
            {
                long sector = lba + i;
                ReadOnlySpan<byte> part = data.Span.Slice(i * Sector, Sector);
                if (fua)
                {
                    part.CopyTo(_durable.AsSpan((int)(sector * Sector)));
                    _cached.Remove(sector);
                }
                else
                {
                    if (!_cached.TryGetValue(sector, out var versions)) _cached[sector] = versions = [];
                    versions.Add(part.ToArray());
                }
            }
        }
        return new(BlockStatus.Success);
    }

    /// <summary>Runs at the start of the next flush, once (a crash point inside a commit).</summary>
    public Action? BeforeNextFlush;

    public ValueTask<BlockStatus> FlushAsync()
    {
        Interlocked.Exchange(ref BeforeNextFlush, null)?.Invoke();
        lock (_lock)
        {
            foreach (var (sector, versions) in _cached) versions[^1].CopyTo(_durable.AsSpan((int)(sector * Sector)));
            _cached.Clear();
            FlushCount++;
        }
        return new(BlockStatus.Success);
    }

    public ValueTask<BlockStatus> WriteZeroesAsync(long lba, long blockCount, bool deallocate) =>
        WriteAsync(lba, new byte[blockCount * Sector], fua: false);

    public ValueTask<BlockStatus> DeallocateAsync(long lba, long blockCount) => WriteZeroesAsync(lba, blockCount, false);

    /// <summary>What the drive holds durably (after a flush: everything written).</summary>
    public byte[] DurableCopy()
    {
        lock (_lock) return (byte[])_durable.Clone();
    }

    /// <summary>Silent corruption: flips one bit of what the drive holds at byte offset (durable and cached copies).</summary>
    public void FlipBit(long offset, int bit)
    {
        lock (_lock)
        {
            _durable[offset] ^= (byte)(1 << bit);
            if (_cached.TryGetValue(offset / Sector, out var versions))
            {
                foreach (byte[] version in versions) version[offset % Sector] ^= (byte)(1 << bit);
            }
        }
    }

    /// <summary>Power loss: each cached sector keeps its durable content or one of its cached versions.</summary>
    public void Crash(Random random)
    {
        lock (_lock)
        {
            foreach (var (sector, versions) in _cached)
            {
                int pick = random.Next(versions.Count + 1);
                if (pick > 0) versions[pick - 1].CopyTo(_durable.AsSpan((int)(sector * Sector)));
            }
            _cached.Clear();
        }
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

/// <summary>A set of crashable drives by path, handed to a pool as its drive opener.</summary>
internal sealed class DriveSet
{
    private readonly Dictionary<string, CrashableDrive> _drives = new();

    public CrashableDrive this[string path] => _drives[Path.GetFullPath(path)];

    public IBlockDevice Open(string path, long size)
    {
        path = Path.GetFullPath(path);
        if (!_drives.TryGetValue(path, out CrashableDrive? drive))
        {
            if (size == 0) throw new FileNotFoundException($"{path}: no such drive");
            _drives[path] = drive = new CrashableDrive(size);
        }
        return drive;
    }

    public bool Exists(string path) => _drives.ContainsKey(Path.GetFullPath(path));

    public void CrashAll(Random random)
    {
        foreach (CrashableDrive d in _drives.Values) d.Crash(random);
    }
}
