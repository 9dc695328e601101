using System.Net;

namespace EdgeBlock.Daemon;

/// <summary>What `edgeblock serve` was asked to do. Defaults give a working daemon with no configuration.</summary>
public sealed record DaemonOptions
{
    public const string DefaultSubsystemNqn = "nqn.2026-11.io.edgeblock:default";
    public const int DefaultPort = 4420;

    public required string DataDirectory { get; init; }
    public IPEndPoint Listen { get; init; } = new(IPAddress.Loopback, DefaultPort);
    public long DefaultSizeBytes { get; init; } = 8L << 30;
    public BackendKind DefaultBackend { get; init; } = BackendKind.File;
    /// <summary>Where to serve Prometheus /metrics; null: off.</summary>
    public IPEndPoint? MetricsEndpoint { get; init; }
    /// <summary>When non-empty, the default subsystem admits only these host NQNs.</summary>
    public IReadOnlyList<string> AllowedHosts { get; init; } = [];

    /// <summary>$XDG_DATA_HOME/edgeblock, or ~/.local/share/edgeblock.</summary>
    public static string DefaultDataDirectory()
    {
        string? xdg = Environment.GetEnvironmentVariable("XDG_DATA_HOME");
        string root = string.IsNullOrEmpty(xdg)
            ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "share")
            : xdg;
        return Path.Combine(root, "edgeblock");
    }
}

public enum BackendKind { Null, Memory, File }
