using EdgeBlock.Initiator;

namespace EdgeBlock.Cli;

/// <summary>
/// `edgeblock bench --idle`: connects --controllers controllers (each its own host NQN, like one VM each) with --queues
/// I/O queues, sends nothing but keep alives for --time, then disconnects. What many idle hosts cost a target (memory per
/// controller, CPU while nothing happens) is measured on the target's side while this holds them.
/// </summary>
internal static class BenchIdle
{
    public static async Task<int> RunAsync(BenchOptions o, TextWriter progress, CancellationToken cancellationToken)
    {
        var controllers = new List<NvmeController>(o.Controllers);
        var options = new NvmeConnectOptions { DhchapSecret = o.DhchapSecret, DhchapControllerSecret = o.DhchapControllerSecret };
        try
        {
            for (int i = 0; i < o.Controllers; i++)
            {
                string hostNqn = o.HostNqn ?? NvmeHost.HostNqnFromId(Guid.NewGuid());
                var connected = await NvmeHost.ConnectAsync(o.Host, o.Port, o.SubsystemNqn, hostNqn, ioQueues: o.Queues,
                    queueSize: o.QueueDepth + 1, headerDigest: o.HeaderDigest, dataDigest: o.DataDigest,
                    options: options, cancellationToken: cancellationToken).ConfigureAwait(false);
                if (connected.Controller is not { } controller)
                {
                    await Console.Error.WriteLineAsync($"edgeblock bench: controller {i + 1} of {o.Controllers}: cannot connect to {o.SubsystemNqn} at {o.Host}:{o.Port}: {connected.FailedStep} failed with {BenchReport.StatusName((ushort)(connected.Status.ToField() & 0x3FFE))}").ConfigureAwait(false);
                    return 2;
                }
                controllers.Add(controller);
            }
            // One line once all are connected: scripts wait for it before they measure the target.
            Console.Out.WriteLine(o.Json
                ? $"{{\"controllers\":{controllers.Count},\"queues\":{o.Queues},\"idle_seconds\":{o.Duration.TotalSeconds}}}"
                : $"connected {controllers.Count} controllers with {o.Queues} I/O queues each; idle for {o.Duration.TotalSeconds} s");
            Console.Out.Flush();
            await Task.Delay(o.Duration, cancellationToken).ConfigureAwait(false);
            return 0;
        }
        catch (OperationCanceledException)
        {
            return 0; // interrupted while idle: the controllers are released below, as at the end of --time
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or System.Net.Sockets.SocketException or TimeoutException)
        {
            await progress.WriteLineAsync($"edgeblock bench: {ex.Message}").ConfigureAwait(false);
            return 2;
        }
        finally
        {
            foreach (var c in controllers) await c.DisposeAsync().ConfigureAwait(false);
        }
    }
}
