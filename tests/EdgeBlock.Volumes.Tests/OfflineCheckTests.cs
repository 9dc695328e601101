using EdgeBlock.Storage;

namespace EdgeBlock.Volumes.Tests;

/// <summary>`pool check --offline`: a pool on real files, checked with nothing else holding it.</summary>
public class OfflineCheckTests
{
    [Fact]
    public async Task OfflineCheck_ClosedPool_IsConsistent_AndAnOpenOneIsRefusedByItsDriveLocks()
    {
        string dir = Directory.CreateTempSubdirectory("edgeblock-offline-").FullName;
        try
        {
            string meta = Path.Combine(dir, "pools", "tank");
            var options = new PoolOptions { CommitInterval = TimeSpan.Zero };
            await using (Pool pool = await Pool.CreateAsync("tank", meta, [new PoolDriveSpec(Path.Combine(dir, "d0.img"), 8 << 20), new PoolDriveSpec(Path.Combine(dir, "d1.img"), 8 << 20)], options))
            {
                await pool.CreateVolumeAsync("v", 4 << 20);
                await using IBlockDevice dev = pool.OpenVolume("v");
                using var data = new AlignedBuffer(64 * 1024);
                Assert.Equal(BlockStatus.Success, await dev.WriteAsync(0, data.Memory, fua: false));
                await pool.SnapshotAsync("v", "s");
                Assert.Equal(BlockStatus.Success, await dev.WriteAsync(0, data.Memory, fua: false));

                var refused = await Assert.ThrowsAsync<VolumeException>(() => Pool.CheckOfflineAsync(meta));
                Assert.Contains("d0.img", refused.Message);
                Assert.Contains("has it open", refused.Message);
            }

            // RocksDB's own info LOG is written even read-only; the metadata itself must not change.
            string Snapshot() => string.Join(";", Directory.GetFiles(meta).Where(f => !Path.GetFileName(f).StartsWith("LOG", StringComparison.Ordinal))
                .Order().Select(f => $"{Path.GetFileName(f)}={new FileInfo(f).Length}"));
            string before = Snapshot();
            PoolCheckReport report = await Pool.CheckOfflineAsync(meta);
            Assert.True(report.Consistent, string.Join("\n", report.Problems));
            Assert.Equal(2, report.Volumes);
            Assert.Equal(2, report.AllocatedExtents); // the extent the snapshot keeps and the copy
            Assert.Equal(before, Snapshot());
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
