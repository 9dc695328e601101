using CsCheck;

namespace EdgeBlock.Volumes.Tests;

/// <summary>Random sequences of write/discard/flush/snapshot/clone/delete, compared with a model after every step.</summary>
public class PropertyTests
{
    [Theory]
    [InlineData("none", 60)]
    [InlineData("checksum", 30)]
    [InlineData("lz4", 30)]
    [InlineData("lz4+checksum", 30)]
    [InlineData("zstd+checksum", 30)]
    [InlineData("encrypt", 20)]
    [InlineData("lz4+checksum+encrypt", 30)]
    public void RandomOperationSequences_ReadBack_ExactlyAsTheModelSays(string features, int iterations)
    {
        Gen.Int[-1_000_000, 1_000_000].Array[10, 60].Sample(codes =>
        {
            Task.Run(async () =>
            {
                await using TestPool t = await TestPool.CreateAsync(drives: 2, driveBytes: 4 << 20);
                var model = new VolumeModel(t, Features.Parse(features));
                await model.StartAsync();
                foreach (int code in codes)
                {
                    await model.ApplyAsync(code);
                    // Now and then the compactor moves chunks under the volumes (a no-op for extent volumes).
                    if (code % 5 == 0) await t.Pool.CompactAsync();
                    // And empty chunk groups leave the map (a no-op for extent volumes).
                    if (code % 7 == 0) await t.Pool.FreeEmptyGroupsAsync();
                }
                await model.VerifyCurrentAsync();
                var report = t.Pool.Check();
                Assert.True(report.Consistent, string.Join("\n", report.Problems));
                // And the same after a clean reopen.
                await t.ReopenAsync();
                model.Acknowledge();
                await model.VerifyAfterCrashAsync();
                Assert.True(t.Pool.Check().Consistent, string.Join("\n", t.Pool.Check().Problems));
            }).GetAwaiter().GetResult();
        }, iter: iterations, threads: 1);
    }
}
