using System.Text.Json;

namespace EdgeBlock.Cli.Tests;

public sealed class RuntimeConfigTests
{
    /// <summary>
    /// Idle thread-pool workers that spin (sched_yield) for more work before they block cost a daemon holding 64 idle
    /// controllers 1% of a core for their keep alives alone (BENCHMARKS.md, "Density"); the shipped edgeblock blocks at once.
    /// </summary>
    [Fact]
    public void EdgeblockRuntimeConfig_ThreadPoolSpinLimit_IsZero()
    {
        // The runtimeconfig.json of edgeblock (the CLI and `serve`), copied next to the test assembly with the program.
        string path = Path.Combine(AppContext.BaseDirectory, "edgeblock.runtimeconfig.json");
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        var properties = doc.RootElement.GetProperty("runtimeOptions").GetProperty("configProperties");

        Assert.True(properties.TryGetProperty("System.Threading.ThreadPool.UnfairSemaphoreSpinLimit", out var limit),
            $"{path} does not set System.Threading.ThreadPool.UnfairSemaphoreSpinLimit");
        Assert.Equal(0, limit.GetInt32());
    }
}
