using System.Globalization;
using EdgeBlock.Api;

namespace EdgeBlock.Cli;

/// <summary>The I/O pattern of a bench run (fio's --rw names).</summary>
internal enum BenchPattern
{
    RandRead,
    RandWrite,
    Read,
    Write,
    RandRw,
}

/// <summary>Everything `edgeblock bench` was asked to do, validated.</summary>
internal sealed record BenchOptions
{
    public required string Host { get; init; }
    public required int Port { get; init; }
    public required string SubsystemNqn { get; init; }
    public string? HostNqn { get; init; }
    /// <summary>DH-HMAC-CHAP: the host's secret (each queue authenticates), and the controller's for bidirectional.</summary>
    public Nvme.Auth.DhchapKey? DhchapSecret { get; init; }
    public Nvme.Auth.DhchapKey? DhchapControllerSecret { get; init; }
    public uint Nsid { get; init; } = 1;
    public BenchPattern Pattern { get; init; } = BenchPattern.RandRead;
    /// <summary>Percentage of reads in randrw.</summary>
    public int ReadMixPercent { get; init; } = 70;
    public int BlockSize { get; init; } = 4096;
    public int QueueDepth { get; init; } = 32;
    public int Queues { get; init; } = 1;
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(15);
    public TimeSpan Ramp { get; init; } = TimeSpan.Zero;
    public bool Verify { get; init; }
    /// <summary>Only LBAs below this many bytes are used (0: the whole namespace; with --verify, at most 1 GiB).</summary>
    public long SizeLimit { get; init; }
    /// <summary>Stop after this many bytes were transferred in the measured window (0: only the time bounds the run).</summary>
    public long IoLimit { get; init; }
    public bool Json { get; init; }
    public bool HeaderDigest { get; init; }
    public bool DataDigest { get; init; }
    public int? ServerPid { get; init; }
    public ulong? Seed { get; init; }
    /// <summary>Writes carry data that compresses about this many to one (<see cref="CompressibleData"/>); null: zeroes.</summary>
    public int? Compressible { get; init; }
    /// <summary>Connect and send no I/O for the whole --time (the target's idle cost); only keep alives flow.</summary>
    public bool Idle { get; init; }
    /// <summary>Controllers to connect, each with --queues I/O queues (more than one only with --idle).</summary>
    public int Controllers { get; init; } = 1;
    /// <summary>Commands per second in all over the measured run (0: as fast as the slots allow), paced per slot as fio's rate_iops.</summary>
    public int RateIops { get; init; }

    /// <summary>How long each command slot waits between its commands at <see cref="RateIops"/>: whole milliseconds (the timer's unit).</summary>
    public TimeSpan PacePerSlot => RateIops == 0 ? TimeSpan.Zero
        : TimeSpan.FromMilliseconds(Math.Round(1000.0 * QueueDepth * Queues / RateIops));

    public bool IsRandom => Pattern is BenchPattern.RandRead or BenchPattern.RandWrite or BenchPattern.RandRw;
    public bool HasReads => Pattern is BenchPattern.RandRead or BenchPattern.Read or BenchPattern.RandRw;
    public bool HasWrites => Pattern is BenchPattern.RandWrite or BenchPattern.Write or BenchPattern.RandRw;

    /// <summary>The range --verify uses when --size-limit is not given (it writes all of it twice over).</summary>
    public const long DefaultVerifyRange = 1L << 30;

    public static string PatternName(BenchPattern p) => p.ToString().ToLowerInvariant();

    public static bool TryParsePattern(string text, out BenchPattern pattern)
    {
        switch (text.Trim().ToLowerInvariant())
        {
            case "randread": pattern = BenchPattern.RandRead; return true;
            case "randwrite": pattern = BenchPattern.RandWrite; return true;
            case "read": pattern = BenchPattern.Read; return true;
            case "write": pattern = BenchPattern.Write; return true;
            case "randrw": pattern = BenchPattern.RandRw; return true;
            default: pattern = default; return false;
        }
    }

    /// <summary>ADDRESS:PORT, HOST:PORT or [IPv6]:PORT; without a port, 4420.</summary>
    public static bool TryParseAddress(string text, out string host, out int port, out string error)
    {
        host = "";
        port = 4420;
        error = "";
        string s = text.Trim();
        string portText = "";
        if (s.StartsWith('['))
        {
            int close = s.IndexOf(']');
            if (close < 0) { error = $"--addr '{text}': missing ']' after the IPv6 address"; return false; }
            host = s[1..close];
            if (close + 1 < s.Length)
            {
                if (s[close + 1] != ':') { error = $"--addr '{text}' is not [ADDRESS]:PORT"; return false; }
                portText = s[(close + 2)..];
            }
        }
        else if (s.Count(c => c == ':') == 1)
        {
            int colon = s.IndexOf(':');
            host = s[..colon];
            portText = s[(colon + 1)..];
        }
        else
        {
            host = s; // a name, an IPv4 address or a bare IPv6 address
        }
        if (portText.Length > 0 && (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out port) || port is < 1 or > 65535))
        {
            error = $"--addr '{text}': the port must be 1..65535 (example: 127.0.0.1:4420)";
            return false;
        }
        if (host.Length == 0 || host.Any(char.IsWhiteSpace))
        {
            error = $"--addr '{text}' is not ADDRESS:PORT (example: 127.0.0.1:4420)";
            return false;
        }
        return true;
    }

    /// <summary>A duration: 15s, 500ms, 2m, 1h, or plain seconds (10, 2.5).</summary>
    public static bool TryParseDuration(string text, out TimeSpan duration, out string error)
    {
        duration = default;
        error = "";
        string s = text.Trim().ToLowerInvariant();
        double scale = 1;
        if (s.EndsWith("ms")) { scale = 0.001; s = s[..^2]; }
        else if (s.EndsWith("us")) { scale = 0.000001; s = s[..^2]; }
        else if (s.EndsWith('s')) s = s[..^1];
        else if (s.EndsWith('m')) { scale = 60; s = s[..^1]; }
        else if (s.EndsWith('h')) { scale = 3600; s = s[..^1]; }
        if (!double.TryParse(s, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double value) || double.IsNaN(value) || value * scale > 86400 * 7)
        {
            error = $"'{text}' is not a duration (examples: 15s, 500ms, 2m)";
            return false;
        }
        duration = TimeSpan.FromSeconds(value * scale);
        return true;
    }

    /// <summary>none, header, data, or header,data (either order).</summary>
    public static bool TryParseDigest(string text, out bool header, out bool data, out string error)
    {
        header = data = false;
        error = "";
        foreach (string part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            switch (part.ToLowerInvariant())
            {
                case "header": case "hdgst": header = true; break;
                case "data": case "ddgst": data = true; break;
                case "none": break;
                default:
                    error = $"--digest '{text}': '{part}' is not a digest (use header, data, header,data or none)";
                    return false;
            }
        }
        return true;
    }

    /// <summary>A byte count as operators write it (4k, 128K, 1G, 4096).</summary>
    public static bool TryParseBytes(string option, string text, out long bytes, out string error)
    {
        if (!Sizes.TryParse(text, out bytes, out error))
        {
            error = $"{option}: {error}";
            return false;
        }
        return true;
    }

    /// <summary>Checks the combination; returns the problems a user can fix.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (BlockSize < 512 || BlockSize % 512 != 0) errors.Add($"--bs {BlockSize}: the I/O size must be a multiple of 512 bytes");
        if (BlockSize > 16 << 20) errors.Add($"--bs {BlockSize}: at most 16M");
        if (QueueDepth is < 1 or > 1024) errors.Add($"--qd {QueueDepth}: 1..1024 commands per queue");
        if (Queues is < 1 or > 64) errors.Add($"--queues {Queues}: 1..64 I/O queues");
        if (ReadMixPercent is < 0 or > 100) errors.Add($"--rwmix-read {ReadMixPercent}: a percentage 0..100");
        if (Duration <= TimeSpan.Zero) errors.Add("--time must be more than 0");
        if (Ramp < TimeSpan.Zero) errors.Add("--ramp must not be negative");
        if (SizeLimit < 0 || SizeLimit > 0 && SizeLimit < BlockSize) errors.Add($"--size-limit {SizeLimit}: at least one I/O ({BlockSize} bytes)");
        if (IoLimit < 0) errors.Add("--io-limit must not be negative");
        if (Nsid is 0 or 0xFFFFFFFF) errors.Add($"--nsid {Nsid}: a namespace ID 1..FFFFFFFEh");
        if (Compressible is < 1 or > CompressibleData.MaxRatio) errors.Add($"--compressible {Compressible}: a ratio 1..{CompressibleData.MaxRatio} (1: incompressible)");
        if (Compressible != null && Verify) errors.Add("--compressible and --verify both choose what is written: use one");
        if (ServerPid is <= 0) errors.Add($"--server-pid {ServerPid}: not a process ID");
        if (ServerPid is { } pid && !File.Exists($"/proc/{pid}/stat")) errors.Add($"--server-pid {pid}: /proc/{pid}/stat does not exist (is the server running on this machine?)");
        if (!Nvme.Nqn.IsValid(SubsystemNqn, out string why)) errors.Add($"--nqn '{SubsystemNqn}' is not a valid NQN: {why}");
        if (HostNqn != null && !Nvme.Nqn.IsValid(HostNqn, out why)) errors.Add($"--hostnqn '{HostNqn}' is not a valid NQN: {why}");
        if (Controllers is < 1 or > 1024) errors.Add($"--controllers {Controllers}: 1..1024 controllers");
        if (Controllers > 1 && !Idle) errors.Add($"--controllers {Controllers} needs --idle (a load runs on one controller; use --queues)");
        if (Idle && Verify) errors.Add("--idle sends no I/O: --verify has nothing to check");
        if (RateIops < 0) errors.Add($"--rate-iops {RateIops}: commands per second, 0 for no pacing");
        else if (RateIops > 0 && PacePerSlot < TimeSpan.FromMilliseconds(1))
            errors.Add($"--rate-iops {RateIops}: at most 1000 per command slot (--qd {QueueDepth} × --queues {Queues}: {1000L * QueueDepth * Queues})");
        return errors;
    }

    /// <summary>The secret in a file (null when no file was named); a file that cannot be read or parsed adds an error naming it, never its content.</summary>
    public static Nvme.Auth.DhchapKey? ReadDhchapSecret(string option, string? path, List<string> errors)
    {
        if (path == null) return null;
        string text;
        try
        {
            text = File.ReadAllText(path).Trim();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            errors.Add($"{option} {path}: {ex.Message}");
            return null;
        }
        if (Nvme.Auth.DhchapKey.TryParse(text, out var key, out string problem)) return key;
        errors.Add($"{option} {path}: {problem}");
        return null;
    }
}
