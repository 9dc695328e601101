using EdgeBlock.Target;

namespace EdgeBlock.Daemon.Tests;

public class QosMetricsTests
{
    [Fact]
    public async Task Scrape_ThrottledVolume_ReportsThrottledSecondsAndQueueDepth()
    {
        string dir = Path.Combine(Path.GetTempPath(), "ebqos-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        try
        {
            await using var pools = new Pools.PoolManager(dir, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
            var flow = pools.Qos.Flow("tank", "a", group: null);
            pools.Qos.Apply(new Management.QosSpec { Volumes = [new Management.VolumeQosSpec { Volume = "tank/a", BytesPerSecond = 1, BurstBytes = 4096 }] });
            Assert.True(flow.AdmitAsync(4096).IsCompleted);
            var waiting = flow.AdmitAsync(4096); // 4 KiB at a byte per second: this one waits until the pools close
            await Task.Delay(50);

            string text = await new DaemonMetrics(new NvmeTarget(), pools).ScrapeAsync();

            Assert.False(waiting.IsCompleted);
            Assert.Contains("edgeblock_volume_queue_depth{pool=\"tank\",volume=\"a\"} 1", text);
            string line = text.Split('\n').Single(l => l.StartsWith("edgeblock_volume_throttled_seconds_total{pool=\"tank\",volume=\"a\"}"));
            Assert.InRange(double.Parse(line.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture), 0.04, 600);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
