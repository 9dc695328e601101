using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using EdgeBlock.Daemon.Management;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Daemon;

/// <summary>
/// Runs the daemon under Microsoft.Extensions.Hosting: console logs, Ctrl-C/SIGTERM graceful stop,
/// and on one Kestrel server the management API on a Unix socket (when <see cref="DaemonOptions.ApiSocketPath"/>
/// is set) and Prometheus /metrics on TCP (when <see cref="DaemonOptions.MetricsEndpoint"/> is).
/// </summary>
public static class DaemonHost
{
    public static async Task<int> RunAsync(DaemonOptions options, Action<EdgeBlockDaemon>? onStarted = null, CancellationToken cancellationToken = default)
    {
        Hosting.InheritedSignals.Reclaim(); // before the host registers its SIGINT/SIGTERM handlers
        var tightened = PrivateFiles.Apply(options.DataDirectory, options.EffectiveConfigPath);
        await using var running = await StartAsync(options, cancellationToken).ConfigureAwait(false);
        var log = running.Host.Services.GetRequiredService<ILoggerFactory>().CreateLogger("edgeblock");
        foreach (string line in tightened) log.LogWarning("{Change}", line);
        // SIGHUP: reload the (hand-edited) config file; an invalid one is refused and logged, the daemon runs on.
        using var hangup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
        {
            context.Cancel = true; // not the default action (terminate)
            _ = Task.Run(running.Daemon.Management.ReloadOnSignalAsync, CancellationToken.None);
        });
        onStarted?.Invoke(running.Daemon);
        await running.Host.WaitForShutdownAsync(cancellationToken).ConfigureAwait(false);
        return 0;
    }

    /// <summary>
    /// The host's defaults watch appsettings.json for changes with an inotify watch on every directory under the content
    /// root (the working directory by default): seen waking the daemon on each file written anywhere below it, and slow to
    /// start from a large tree. The daemon is configured by its options and edgeblock.json only, so nothing is watched and
    /// the content root is the program's own directory.
    /// </summary>
    internal static readonly string[] HostArgs = ["--hostBuilder:reloadConfigOnChange=false"];

    /// <summary>Starts the daemon (and its API) and returns once both serve; dispose to stop.</summary>
    public static async Task<RunningDaemon> StartAsync(DaemonOptions options, CancellationToken cancellationToken = default,
        Action<ILoggingBuilder>? configureLogging = null)
    {
        IHost host;
        Volumes.Pool.PreloadNativeLibrary(); // overlaps with the host's set-up below
        if (options.ApiSocketPath != null || options.MetricsEndpoint != null)
        {
            // One HTTP stack (Kestrel) for the management API on its Unix socket and /metrics on TCP.
            if (options.ApiSocketPath is { } apiSocket) PrepareSocketPath(apiSocket);
            var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = HostArgs, ContentRootPath = AppContext.BaseDirectory });
            Configure(builder.Services, builder.Logging, options, configureLogging);
            var rejections = new KestrelRejections();
            builder.WebHost.ConfigureKestrel(k =>
            {
                WebRefusals.Configure(k.Limits);
                if (options.ApiSocketPath is { } socket) k.ListenUnixSocket(socket, rejections.Use);
                if (options.MetricsEndpoint is { } metrics) MetricsEndpoint.Listen(k, metrics);
            });
            builder.Services.ConfigureHttpJsonOptions(o => ConfigJson.Configure(o.SerializerOptions));
            builder.Services.AddProblemDetails();
            builder.Services.AddOpenApi("v1");
            builder.Services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
            var app = builder.Build();
            if (options.ApiSocketPath != null)
                app.Lifetime.ApplicationStopped.Register(rejections.Subscribe(app.Services.GetRequiredService<DiagnosticListener>()).Dispose);
            var daemon = app.Services.GetRequiredService<EdgeBlockDaemon>();
            MetricsEndpoint.Map(app, () => daemon.Metrics); // first: TCP requests never reach the API below
            if (options.ApiSocketPath != null)
            {
                app.Use(ManagementApi.BadRequestsAsProblems);
                app.UseStatusCodePages(WebRefusals.WriteAsync); // the web layer's own refusals (404, 405, 415...) as problem+json, not an empty body
                ManagementApi.Map(app, daemon.Management);
                Pools.PoolsApi.Map(app, daemon.Pools); // /v1 pools, volumes, groups
                app.MapOpenApi(); // GET /openapi/v1.json, generated from the endpoints above
            }
            host = app;
        }
        else
        {
            var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = HostArgs, ContentRootPath = AppContext.BaseDirectory });
            Configure(builder.Services, builder.Logging, options, configureLogging);
            host = builder.Build();
        }
        try
        {
            await host.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            await host.Services.GetRequiredService<EdgeBlockDaemon>().DisposeAsync().ConfigureAwait(false);
            host.Dispose();
            if (ex is IOException io && options.MetricsEndpoint is { } metrics && MetricsEndpoint.BindFailure(io, metrics) is { } failure) throw failure;
            throw;
        }
        if (options.ApiSocketPath is { } path && OperatingSystem.IsLinux())
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite);
        var running = new RunningDaemon(host, host.Services.GetRequiredService<EdgeBlockDaemon>(), options.ApiSocketPath);
        if (options.MetricsEndpoint is { } endpoint)
            host.Services.GetRequiredService<ILoggerFactory>().CreateLogger("edgeblock").LogInformation("Prometheus metrics on http://{Endpoint}/metrics", endpoint);
        return running;
    }

    private static void Configure(IServiceCollection services, ILoggingBuilder logging, DaemonOptions options, Action<ILoggingBuilder>? configureLogging)
    {
        logging.ClearProviders();
        if (SystemdHelpers.IsSystemdService())
        {
            // journald adds the time; AddSystemd gives each line its syslog priority.
            logging.AddConsole();
        }
        else
        {
            logging.AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "HH:mm:ss ";
            });
        }
        logging.SetMinimumLevel(LogLevel.Information);
        logging.AddFilter("Microsoft", LogLevel.Warning);
        // A start-up failure is printed once by `serve` (the message names what is wrong), not as a stack trace.
        logging.AddFilter("Microsoft.Extensions.Hosting.Internal.Host", LogLevel.Critical);
        configureLogging?.Invoke(logging);
        Logging.EscapingLoggerFactory.Register(services); // after every provider: user text is escaped for all of them
        services.AddSystemd(); // Type=notify readiness and stop under systemd; nothing otherwise
        services.AddSingleton(options);
        services.AddSingleton<EdgeBlockDaemon>();
        services.AddHostedService(sp => sp.GetRequiredService<EdgeBlockDaemon>());
        services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(10));
    }

    /// <summary>Refuses a socket another daemon answers on; removes a stale one; creates the directory.</summary>
    private static void PrepareSocketPath(string path)
    {
        if (System.Text.Encoding.UTF8.GetByteCount(path) > 107)
            throw new InvalidOperationException($"API socket path {path} is longer than a Unix socket allows (107 bytes); choose a shorter --api-socket");
        string? dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir != null) Directory.CreateDirectory(dir);
        if (!File.Exists(path)) return;
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(path));
        }
        catch (SocketException)
        {
            File.Delete(path); // nobody answers: left over from a daemon that did not stop cleanly
            return;
        }
        throw new InvalidOperationException($"another EdgeBlock daemon is answering on {path}; stop it first, or give this one its own --api-socket");
    }
}

/// <summary>A started daemon; disposing stops it gracefully (closes queues, flushes devices, removes the API socket).</summary>
public sealed class RunningDaemon(IHost host, EdgeBlockDaemon daemon, string? apiSocket) : IAsyncDisposable
{
    public IHost Host { get; } = host;
    public EdgeBlockDaemon Daemon { get; } = daemon;
    public string? ApiSocket { get; } = apiSocket;

    public async ValueTask DisposeAsync()
    {
        try
        {
            await Host.StopAsync().ConfigureAwait(false);
        }
        finally
        {
            await Daemon.DisposeAsync().ConfigureAwait(false);
            if (Host is IAsyncDisposable a) await a.DisposeAsync().ConfigureAwait(false);
            else Host.Dispose();
            if (ApiSocket != null) try { File.Delete(ApiSocket); } catch (IOException) { }
        }
    }
}
