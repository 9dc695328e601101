using System.CommandLine;
using System.Net;
using System.Net.Sockets;
using EdgeBlock.Cli;
using EdgeBlock.Daemon;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Management.Tests;

/// <summary>A real daemon (target, listener, API on a Unix socket) in a temp directory, and the real CLI run in-process against it.</summary>
public sealed class TestDaemon : IAsyncDisposable
{
    private RunningDaemon? _running;

    private readonly long? _memoryBudgetBytes;

    private TestDaemon(string directory, long? memoryBudgetBytes = null)
    {
        Directory = directory;
        _memoryBudgetBytes = memoryBudgetBytes;
    }

    public string Directory { get; }
    public string Socket => Path.Combine(Directory, "api.sock");
    public string ConfigPath => Path.Combine(Directory, DaemonOptions.ConfigFileName);
    public RunningDaemon Running => _running ?? throw new InvalidOperationException("not running");
    public EdgeBlockDaemon Daemon => Running.Daemon;
    public IPEndPoint NvmeEndPoint => Daemon.ListenEndPoint!;

    /// <summary>An HTTP client of the API on the daemon's socket, for requests the CLI would never send.</summary>
    public HttpClient CreateHttpClient() => new(new SocketsHttpHandler
    {
        ConnectCallback = async (_, ct) =>
        {
            var s = new System.Net.Sockets.Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            await s.ConnectAsync(new UnixDomainSocketEndPoint(Socket), ct);
            return new NetworkStream(s, ownsSocket: true);
        },
    }) { BaseAddress = new Uri("http://edgeblock") };

    /// <param name="memoryBudgetBytes">serve --memory-budget (null: the default).</param>
    public static async Task<TestDaemon> StartAsync(long? memoryBudgetBytes = null)
    {
        // Short path: a Unix socket path is limited to 107 bytes.
        string dir = Path.Combine(Path.GetTempPath(), "ebm-" + Guid.NewGuid().ToString("N")[..12]);
        System.IO.Directory.CreateDirectory(dir);
        var daemon = new TestDaemon(dir, memoryBudgetBytes);
        await daemon.RestartAsync();
        return daemon;
    }

    public DaemonOptions Options => new()
    {
        DataDirectory = Directory,
        Listen = new IPEndPoint(IPAddress.Loopback, 0),
        DefaultSizeBytes = 16 << 20,
        DefaultBackend = BackendKind.Memory,
        ApiSocketPath = Socket,
        MemoryBudgetBytes = _memoryBudgetBytes,
    };

    /// <summary>Stops the daemon if it runs and starts it again from the config file.</summary>
    public async Task RestartAsync()
    {
        await StopAsync();
        _running = await DaemonHost.StartAsync(Options, configureLogging: l => l.SetMinimumLevel(LogLevel.Warning));
    }

    public async Task StopAsync()
    {
        if (_running != null) await _running.DisposeAsync();
        _running = null;
    }

    /// <summary>Adds a directory to the config's storage_roots and reloads it, as an administrator would (the API cannot).</summary>
    public async Task AddStorageRootAsync(string root)
    {
        var config = System.Text.Json.Nodes.JsonNode.Parse(await File.ReadAllTextAsync(ConfigPath))!.AsObject();
        var roots = config["storage_roots"]?.AsArray() ?? [];
        roots.Add(root);
        config["storage_roots"] = roots.DeepClone();
        await File.WriteAllTextAsync(ConfigPath, config.ToJsonString());
        var reload = await CliAsync("config", "reload");
        if (reload.ExitCode != 0) throw new InvalidOperationException($"config reload: {reload}");
    }

    /// <summary>Runs `edgeblock ARGS --api-socket SOCKET` and returns its exit code and output.</summary>
    public Task<CliResult> CliAsync(params string[] args) => RunCliAsync([.. args, "--api-socket", Socket]);

    public static async Task<CliResult> RunCliAsync(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var root = ManagementCommands.CreateRoot();
        PoolCommands.AddTo(root);
        VhostCommands.AddTo(root);
        HostCommands.AddTo(root);
        FsCommands.AddTo(root);
        ConfigCommands.AddTo(root);
        int code = await root.Parse(args).InvokeAsync(new InvocationConfiguration { Output = output, Error = error });
        return new CliResult(code, output.ToString(), error.ToString());
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        try { System.IO.Directory.Delete(Directory, recursive: true); } catch (IOException) { }
    }
}

public sealed record CliResult(int ExitCode, string Output, string Error)
{
    public override string ToString() => $"exit {ExitCode}\nstdout:\n{Output}\nstderr:\n{Error}";

    public void AssertOk() => Assert.True(ExitCode == 0, ToString());

    /// <summary>Exit 2 with the daemon's refusal, mentioning each of <paramref name="mentions"/>.</summary>
    public void AssertRefused(params string[] mentions)
    {
        Assert.True(ExitCode == 2, ToString());
        Assert.Contains("refused", Error);
        foreach (string m in mentions) Assert.Contains(m, Error);
    }
}
