namespace EdgeBlock.Api;

/// <summary>Where a client finds the daemon's API, and the data directory that default belongs to.</summary>
public static class ApiSocket
{
    /// <summary>$XDG_DATA_HOME/edgeblock, or ~/.local/share/edgeblock.</summary>
    public static string DefaultDataDirectory()
    {
        string? xdg = Environment.GetEnvironmentVariable("XDG_DATA_HOME");
        string root = string.IsNullOrEmpty(xdg)
            ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "share")
            : xdg;
        return Path.Combine(root, "edgeblock");
    }

    /// <summary>
    /// Where the CLI and a daemon with the default data directory meet: $EDGEBLOCK_API_SOCKET if set;
    /// /run/edgeblock/api.sock as root; $XDG_RUNTIME_DIR/edgeblock.sock; else edgeblock.sock in the default data directory.
    /// </summary>
    public static string Default()
    {
        string? env = Environment.GetEnvironmentVariable("EDGEBLOCK_API_SOCKET");
        if (!string.IsNullOrEmpty(env)) return env;
        if (Environment.IsPrivilegedProcess) return "/run/edgeblock/api.sock";
        string? runtime = Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR");
        return !string.IsNullOrEmpty(runtime) ? Path.Combine(runtime, "edgeblock.sock") : Path.Combine(DefaultDataDirectory(), "api.sock");
    }
}
