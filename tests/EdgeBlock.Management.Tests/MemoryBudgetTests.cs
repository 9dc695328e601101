using System.Text.Json;
using EdgeBlock.Daemon;
using EdgeBlock.Initiator;

namespace EdgeBlock.Management.Tests;

/// <summary>serve --memory-budget (issue H): a load that needs far more than the budget slows, never fails, and status shows it.</summary>
public sealed class MemoryBudgetTests
{
    private const int Bytes = 128 * 1024;

    [Fact]
    public async Task OneMebibyteBudget_Qd128WritesAndReadsOf128K_VerifyAndStayWithinIt()
    {
        await using var d = await TestDaemon.StartAsync(memoryBudgetBytes: 1 << 20);
        var connected = await NvmeHost.ConnectAsync("127.0.0.1", d.NvmeEndPoint.Port, DaemonOptions.DefaultSubsystemNqn,
            NvmeHost.HostNqnFromId(Guid.NewGuid()), ioQueues: 2, queueSize: 128);
        await using var host = connected.EnsureSuccess();

        int blockSize = (await host.IdentifyNamespaceAsync(1)).Value!.BlockSize;

        // 128 commands of 128 KiB in flight want 16 MiB; the budget holds 8 of them.
        await Task.WhenAll(Enumerable.Range(0, 128).Select(i => WriteReadVerifyAsync(host, i, blockSize))).WaitAsync(TimeSpan.FromMinutes(1));

        var status = await d.CliAsync("status", "--json");
        status.AssertOk();
        var memory = JsonDocument.Parse(status.Output).RootElement.GetProperty("memory");
        Assert.Equal(1 << 20, memory.GetProperty("budget_bytes").GetInt64());
        Assert.True(memory.GetProperty("peak_in_use_bytes").GetInt64() <= 1 << 20, status.Output);
        Assert.True(memory.GetProperty("waits").GetInt64() > 0, "the load never reached the budget: " + status.Output);
        Assert.True(memory.GetProperty("mapped_bytes").GetInt64() <= 1 << 20, status.Output);
        var text = await d.CliAsync("status");
        Assert.Contains("memory budget", text.Output);
        Assert.Contains("1 MiB", text.Output);
    }

    private static async Task WriteReadVerifyAsync(NvmeController host, int worker, int blockSize)
    {
        await Task.Yield();
        var data = new byte[Bytes];
        new Random(worker).NextBytes(data);
        var back = new byte[Bytes];
        ulong lba = (ulong)worker * (ulong)(Bytes / blockSize);
        var w = await host.WriteAsync(1, lba, Bytes / blockSize, data);
        Assert.True(w.IsSuccess, $"write {worker}: {w}");
        var r = await host.ReadAsync(1, lba, Bytes / blockSize, back);
        Assert.True(r.IsSuccess, $"read {worker}: {r}");
        Assert.True(data.AsSpan().SequenceEqual(back), $"worker {worker} read other data");
    }
}
