using EdgeBlock.Storage;

namespace EdgeBlock.Volumes.Tests;

/// <summary>
/// Drives a pool with a sequence of operations decoded from integers and keeps a simple model
/// of what every volume must contain: block → version. It also remembers what was last made
/// durable (by a successful flush or a management operation, which commits) and every version
/// written since, which is what a crash may leave behind.
/// </summary>
internal sealed class VolumeModel
{
    public const long VolumeBytes = 1 << 20;
    public const int Blocks = (int)(VolumeBytes / BlockPattern.Size);

    private readonly TestPool _t;
    private readonly VolumeFeatures? _features;
    private readonly Dictionary<string, IBlockDevice> _open = [];
    private long _nextVersion = 1;
    private int _nextName;

    /// <param name="features">Data services of every volume the model creates (none: extent volumes).</param>
    public VolumeModel(TestPool t, VolumeFeatures? features = null)
    {
        _t = t;
        _features = features;
    }

    /// <summary>Current content of every volume and snapshot.</summary>
    public Dictionary<string, Dictionary<int, long>> Current { get; private set; } = [];

    /// <summary>Content as of the last acknowledged commit.</summary>
    public Dictionary<string, Dictionary<int, long>> Durable { get; private set; } = [];

    /// <summary>Versions written to each block since the last acknowledged commit.</summary>
    public Dictionary<string, Dictionary<int, HashSet<long>>> Since { get; } = [];

    public List<string> Log { get; } = [];

    public async Task StartAsync()
    {
        foreach (string name in new[] { "a", "b" })
        {
            await _t.Pool.CreateVolumeAsync(name, VolumeBytes, features: _features, key: _t.KeyFor(_features));
            Current[name] = [];
        }
        Acknowledge();
    }

    /// <summary>Applies one operation chosen by code. Returns false when the pool refused it for space (allowed).</summary>
    public async Task ApplyAsync(int code)
    {
        var writable = Current.Keys.Where(n => !n.Contains('@')).OrderBy(n => n).ToList();
        var snapshots = Current.Keys.Where(n => n.Contains('@')).OrderBy(n => n).ToList();
        int op = Math.Abs(code % 100);
        int arg = Math.Abs(code / 100);
        string vol = writable.Count > 0 ? writable[arg % writable.Count] : "";
        int lba = (arg * 7919) % Blocks;
        int count = 1 + arg % 24;
        if (lba + count > Blocks) count = Blocks - lba;

        if (writable.Count == 0 && op < 90)
        {
            await CreateAsync();
            return;
        }
        if (op < 55) await WriteAsync(vol, lba, count);
        else if (op < 67) await DiscardAsync(vol, lba, count);
        else if (op < 80) await FlushAsync(vol);
        else if (op < 85) await SnapshotAsync(vol);
        else if (op < 90 && snapshots.Count > 0) await CloneAsync(snapshots[arg % snapshots.Count]);
        else if (op < 95 && Current.Count > 1) await DeleteAsync(Current.Keys.OrderBy(n => n).ToList()[arg % Current.Count]);
        else await CreateAsync();
    }

    private IBlockDevice Device(string name)
    {
        if (!_open.TryGetValue(name, out IBlockDevice? dev)) _open[name] = dev = _t.Pool.OpenVolume(name);
        return dev;
    }

    public async Task WriteAsync(string vol, int lba, int count)
    {
        var data = new byte[count * BlockPattern.Size];
        var versions = new long[count];
        for (int i = 0; i < count; i++)
        {
            versions[i] = _nextVersion++;
            BlockPattern.Fill(data.AsSpan(i * BlockPattern.Size, BlockPattern.Size), versions[i]);
        }
        Log.Add($"write {vol} {lba}+{count} v{versions[0]}");
        long[] before = Enumerable.Range(lba, count).Select(b => Current[vol].GetValueOrDefault(b)).ToArray();
        BlockStatus status = await Device(vol).WriteAsync(lba, data, fua: false);
        Assert.True(status is BlockStatus.Success or BlockStatus.CapacityExceeded, $"write {vol} {lba}+{count}: {status}");
        for (int i = 0; i < count; i++) Record(vol, lba + i, versions[i]);
        if (status != BlockStatus.Success)
        {
            // A write refused for space may have landed in part (extent by extent), like a failed
            // write on a disk: each block holds its old or its new content, nothing else.
            byte[] read = new byte[data.Length];
            Assert.Equal(BlockStatus.Success, await Device(vol).ReadAsync(lba, read));
            for (int i = 0; i < count; i++)
            {
                long v = BlockPattern.Identify(read.AsSpan(i * BlockPattern.Size, BlockPattern.Size));
                Assert.True(v == versions[i] || v == before[i], $"refused write: block {lba + i} holds v{v}, neither old v{before[i]} nor new v{versions[i]}");
                if (v == 0) Current[vol].Remove(lba + i);
                else Current[vol][lba + i] = v;
            }
        }
    }

    private void Record(string vol, int lba, long version)
    {
        if (version == 0) Current[vol].Remove(lba);
        else Current[vol][lba] = version;
        if (!Since.TryGetValue(vol, out var since)) Since[vol] = since = [];
        if (!since.TryGetValue(lba, out var set)) since[lba] = set = [];
        set.Add(version);
    }

    public async Task DiscardAsync(string vol, int lba, int count)
    {
        Log.Add($"discard {vol} {lba}+{count}");
        Assert.Equal(BlockStatus.Success, await Device(vol).DeallocateAsync(lba, count));
        for (int i = 0; i < count; i++) Record(vol, lba + i, 0);
    }

    public async Task FlushAsync(string vol)
    {
        Log.Add($"flush {vol}");
        Assert.Equal(BlockStatus.Success, await Device(vol).FlushAsync());
        Acknowledge();
    }

    private async Task SnapshotAsync(string vol)
    {
        string snap = $"s{_nextName++}";
        Log.Add($"snapshot {vol}@{snap}");
        await _t.Pool.SnapshotAsync(vol, snap);
        Current[$"{vol}@{snap}"] = new Dictionary<int, long>(Current[vol]);
        Acknowledge();
    }

    private async Task CloneAsync(string snapshot)
    {
        string name = $"c{_nextName++}";
        Log.Add($"clone {snapshot} {name}");
        try
        {
            await _t.Pool.CloneAsync(snapshot, name);
        }
        catch (VolumeException e) when (e.Error == VolumeError.NoSpace)
        {
            return;
        }
        Current[name] = new Dictionary<int, long>(Current[snapshot]);
        Acknowledge();
    }

    private async Task DeleteAsync(string name)
    {
        Log.Add($"delete {name}");
        if (_open.Remove(name, out IBlockDevice? dev)) await dev.DisposeAsync();
        await _t.Pool.DeleteVolumeAsync(name);
        Current.Remove(name);
        Since.Remove(name);
        Acknowledge();
    }

    private async Task CreateAsync()
    {
        string name = $"v{_nextName++}";
        Log.Add($"create {name}");
        await _t.Pool.CreateVolumeAsync(name, VolumeBytes, features: _features, key: _t.KeyFor(_features));
        Current[name] = [];
        Acknowledge();
    }

    /// <summary>A flush whose completion the host never sees (the crash comes first).</summary>
    public async Task FlushUnacknowledgedAsync()
    {
        string vol = Current.Keys.FirstOrDefault(n => !n.Contains('@')) ?? "";
        if (vol.Length == 0) return;
        Log.Add($"flush {vol} (crash before it completes)");
        Assert.Equal(BlockStatus.Success, await Device(vol).FlushAsync());
    }

    /// <summary>Called whenever everything so far became durable.</summary>
    public Action? Acknowledged { get; set; }

    /// <summary>Everything so far is durable.</summary>
    public void Acknowledge()
    {
        Acknowledged?.Invoke();
        Durable = Current.ToDictionary(kv => kv.Key, kv => new Dictionary<int, long>(kv.Value));
        Since.Clear();
    }

    /// <summary>Checks every volume against the current model exactly.</summary>
    public async Task VerifyCurrentAsync()
    {
        foreach (var (name, blocks) in Current)
        {
            long[] read = await ReadAllAsync(name);
            for (int lba = 0; lba < Blocks; lba++)
            {
                long expected = blocks.GetValueOrDefault(lba);
                Assert.True(read[lba] == expected, $"{name} block {lba}: read v{read[lba]}, expected v{expected}\n{string.Join("\n", Log.TakeLast(30))}");
            }
        }
    }

    /// <summary>After a crash: durable content, or for blocks written since, any version written since.</summary>
    public async Task VerifyAfterCrashAsync()
    {
        _open.Clear(); // devices of the pool that crashed
        var volumes = _t.Pool.ListVolumes().Select(v => v.Name).ToHashSet();
        Assert.True(volumes.SetEquals(Durable.Keys), $"volumes after crash: {string.Join(",", volumes)}; durable: {string.Join(",", Durable.Keys)}");
        foreach (var (name, blocks) in Durable)
        {
            long[] read = await ReadAllAsync(name);
            var since = Since.GetValueOrDefault(name) ?? [];
            var now = new Dictionary<int, long>();
            for (int lba = 0; lba < Blocks; lba++)
            {
                long durable = blocks.GetValueOrDefault(lba);
                bool ok = read[lba] == durable || (since.TryGetValue(lba, out var set) && set.Contains(read[lba]));
                Assert.True(ok, $"{name} block {lba} after crash: read v{read[lba]}, durable v{durable}, written since: {(since.TryGetValue(lba, out var s) ? string.Join(",", s) : "-")}\n{string.Join("\n", Log.TakeLast(30))}");
                if (read[lba] != 0) now[lba] = read[lba];
            }
            Current[name] = now;
        }
        foreach (string gone in Current.Keys.Except(Durable.Keys).ToList()) Current.Remove(gone);
        Acknowledge();
    }

    private async Task<long[]> ReadAllAsync(string name)
    {
        var result = new long[Blocks];
        var buffer = new byte[VolumeBytes];
        if (name.Contains('@'))
        {
            await using IBlockDevice dev = _t.Pool.OpenSnapshotForReading(name);
            Assert.Equal(BlockStatus.Success, await dev.ReadAsync(0, buffer));
        }
        else
        {
            Assert.Equal(BlockStatus.Success, await Device(name).ReadAsync(0, buffer));
        }
        for (int i = 0; i < Blocks; i++)
        {
            result[i] = BlockPattern.Identify(buffer.AsSpan(i * BlockPattern.Size, BlockPattern.Size));
            Assert.True(result[i] >= 0, $"{name} block {i} is damaged (not any written version)");
        }
        return result;
    }
}
