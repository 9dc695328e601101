using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Daemon;

/// <summary>Runs the daemon under Microsoft.Extensions.Hosting: console logs, Ctrl-C/SIGTERM graceful stop.</summary>
public static class DaemonHost
{
    public static async Task<int> RunAsync(DaemonOptions options, Action<EdgeBlockDaemon>? onStarted = null, CancellationToken cancellationToken = default)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss ";
        });
        builder.Logging.SetMinimumLevel(LogLevel.Information);
        builder.Logging.AddFilter("Microsoft", LogLevel.Warning);
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton<EdgeBlockDaemon>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<EdgeBlockDaemon>());
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(10));
        using var host = builder.Build();
        await host.StartAsync(cancellationToken).ConfigureAwait(false);
        var daemon = host.Services.GetRequiredService<EdgeBlockDaemon>();
        onStarted?.Invoke(daemon);
        await host.WaitForShutdownAsync(cancellationToken).ConfigureAwait(false);
        await daemon.DisposeAsync().ConfigureAwait(false);
        return 0;
    }
}
