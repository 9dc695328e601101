using System.Net;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Daemon.Tests;

public class DaemonHostTests
{
    /// <summary>
    /// The host's defaults read appsettings.json from the working directory and watch it, which puts an inotify watch
    /// on every directory below the working directory: a daemon started from / or a large tree pays for that at start
    /// and wakes up on each file written anywhere below it.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task StartAsync_WithOrWithoutApi_WatchesNoConfigurationFileAndReadsNothingFromTheWorkingDirectory(bool api)
    {
        string dir = Path.Combine(Path.GetTempPath(), "ebhost-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        try
        {
            var options = new DaemonOptions
            {
                DataDirectory = dir,
                Listen = new IPEndPoint(IPAddress.Loopback, 0),
                DefaultSizeBytes = 1 << 20,
                DefaultBackend = BackendKind.Memory,
                ApiSocketPath = api ? Path.Combine(dir, "api.sock") : null,
            };
            await using var running = await DaemonHost.StartAsync(options, configureLogging: l => l.SetMinimumLevel(LogLevel.Warning));

            var configuration = (IConfigurationRoot)running.Host.Services.GetRequiredService<IConfiguration>();
            var files = configuration.Providers.OfType<FileConfigurationProvider>().ToList();
            Assert.All(files, f => Assert.False(f.Source.ReloadOnChange, $"{f.Source.Path} is watched for changes"));
            string contentRoot = running.Host.Services.GetRequiredService<IHostEnvironment>().ContentRootPath;
            Assert.Equal(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory), Path.TrimEndingDirectorySeparator(contentRoot));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
