namespace EdgeBlock.Volumes.Tests;

/// <summary>
/// Power-loss simulation. The data drives drop or keep, sector by sector, whatever was written
/// since their last flush (<see cref="CrashableDrive"/>). RocksDB's files are copied as they
/// are at the crash, and each write-ahead log is cut at a random point after what was synced
/// by the last acknowledged commit — so a commit that was in flight may be torn anywhere in
/// its batch. The pool is then opened from that copy and must hold every acknowledged write,
/// with consistent refcounts and free space.
/// </summary>
public class CrashTests
{
    private const int Pools = 25;
    private const int CrashesPerPool = 40;

    /// <summary>With checksums on, a read error after a crash fails the model's read: no unflushed block may fail its checksum.</summary>
    [Theory]
    [InlineData("none")]
    [InlineData("lz4+checksum+encrypt")]
    public async Task Crash_AtAThousandRandomPoints_LosesNothingThatWasFlushed(string features)
    {
        int crashes = 0, tornCommits = 0;
        for (int p = 0; p < Pools; p++)
        {
            var random = new Random(1000 + p);
            await using TestPool t = await TestPool.CreateAsync(drives: 2, driveBytes: 4 << 20);
            var wal = new WalSyncTracker();
            var model = new VolumeModel(t, Features.Parse(features)) { Acknowledged = () => wal.Synced(t.MetadataDir) };
            await model.StartAsync();
            for (int c = 0; c < CrashesPerPool; c++)
            {
                int ops = random.Next(1, 12);
                for (int i = 0; i < ops; i++)
                {
                    await model.ApplyAsync(random.Next(-1_000_000, 1_000_000));
                    if (random.Next(4) == 0) await t.Pool.CompactAsync(); // moved chunks must survive crashes too
                }
                string copy = Path.Combine(t.Root, $"meta-crash{c}");
                bool crashed = false;
                void Crash()
                {
                    wal.CopyAsCrashed(t.MetadataDir, copy, random);
                    t.Drives.CrashAll(random);
                    crashed = true;
                }
                switch (random.Next(3))
                {
                    case 0:
                        // Power fails while a commit is in flight: its metadata may be torn anywhere.
                        await model.FlushUnacknowledgedAsync();
                        tornCommits++;
                        break;
                    case 1:
                        // Power fails inside a commit, when it starts flushing a drive.
                        CrashableDrive drive = t.Drives[t.DrivePath(random.Next(2))];
                        drive.BeforeNextFlush = Crash;
                        await model.FlushUnacknowledgedAsync();
                        // With no writable volume left there was no flush: disarm, or it fires in a later commit.
                        drive.BeforeNextFlush = null;
                        tornCommits++;
                        break;
                }
                if (!crashed) Crash();
                t.Pool.Abandon();
                string old = t.MetadataDir;
                t.MetadataDir = copy;
                t.Pool = Pool.Open(copy, t.Options());
                Directory.Delete(old, recursive: true);
                crashes++;

                PoolCheckReport report = t.Pool.Check();
                Assert.True(report.Consistent, $"pool {p} crash {c}: {string.Join("\n", report.Problems)}\n{string.Join("\n", model.Log.TakeLast(20))}");
                await model.VerifyAfterCrashAsync();
            }
        }
        Assert.True(crashes >= 1000);
        Assert.True(tornCommits > 400, $"only {tornCommits} crashes hit a commit in flight");
    }
}

/// <summary>Remembers how much of each RocksDB write-ahead log was synced at the last acknowledged commit.</summary>
internal sealed class WalSyncTracker
{
    private Dictionary<string, long> _synced = [];

    public void Synced(string directory) =>
        _synced = Directory.GetFiles(directory, "*.log").ToDictionary(f => Path.GetFileName(f), f => new FileInfo(f).Length);

    /// <summary>Copies the database directory as a power loss would leave it.</summary>
    public void CopyAsCrashed(string directory, string target, Random random)
    {
        // RocksDB flushes and compacts in the background: a copy taken while it swaps files
        // could hold a manifest without its tables. Copy until the directory did not change
        // under the copy (its state at one instant, as a power loss would leave it).
        for (int attempt = 0; ; attempt++)
        {
            if (Directory.Exists(target)) Directory.Delete(target, recursive: true);
            Directory.CreateDirectory(target);
            string before = Listing(directory);
            bool complete = Directory.GetFiles(directory).All(file => TryCopy(file, target));
            if (complete && Listing(directory) == before) break;
            Assert.True(attempt < 50, "the metadata directory kept changing while it was copied");
            Thread.Sleep(5);
        }
        foreach (string destination in Directory.GetFiles(target, "*.log"))
        {
            long length = new FileInfo(destination).Length;
            long synced = Math.Min(_synced.GetValueOrDefault(Path.GetFileName(destination)), length);
            if (length > synced)
            {
                using var stream = new FileStream(destination, FileMode.Open);
                stream.SetLength(random.NextInt64(synced, length + 1));
            }
        }
    }

    /// <summary>Names and sizes of the files RocksDB replaces (tables, manifests, CURRENT, OPTIONS).</summary>
    private static string Listing(string directory) => string.Join("\n", Directory.GetFiles(directory)
        .Where(f => !f.EndsWith(".log", StringComparison.Ordinal) && Path.GetFileName(f) != "LOCK")
        .Select(f => $"{Path.GetFileName(f)} {new FileInfo(f).Length}").Order());

    private static bool TryCopy(string file, string target)
    {
        if (Path.GetFileName(file) == "LOCK") return true;
        try
        {
            File.Copy(file, Path.Combine(target, Path.GetFileName(file)));
            return true;
        }
        catch (FileNotFoundException)
        {
            return false; // deleted while we copied: try again
        }
    }
}
