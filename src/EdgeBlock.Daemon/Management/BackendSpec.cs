using EdgeBlock.Storage;

namespace EdgeBlock.Daemon.Management;

/// <summary>A parsed namespace backend: <c>null[:SIZE]</c>, <c>memory:SIZE</c>, <c>file:PATH[:SIZE]</c> or <c>volume:POOL/NAME</c> (Path holds POOL/NAME).</summary>
public sealed record BackendSpec(BackendKind Kind, string? Path, long? SizeBytes)
{
    public const long DefaultNullSize = 1L << 40;
    public const string Syntax = Backends.Syntax;

    public static bool TryParse(string? text, out BackendSpec spec, out string error)
    {
        spec = new BackendSpec(BackendKind.Null, null, null);
        error = "";
        text = text?.Trim() ?? "";
        int colon = text.IndexOf(':');
        string kind = colon < 0 ? text : text[..colon];
        string rest = colon < 0 ? "" : text[(colon + 1)..];
        long? size = null;
        switch (kind)
        {
            case "null":
                if (colon >= 0 && !TrySize(rest, out size, out error)) return false;
                spec = new BackendSpec(BackendKind.Null, null, size);
                return true;
            case "memory":
                if (colon < 0 || rest.Length == 0) { error = $"'{text}': memory needs a size (memory:SIZE, e.g. memory:1G)"; return false; }
                if (!TrySize(rest, out size, out error)) return false;
                spec = new BackendSpec(BackendKind.Memory, null, size);
                return true;
            case "file":
                if (rest.Length == 0) { error = $"'{text}': file needs a path (file:PATH[:SIZE])"; return false; }
                int last = rest.LastIndexOf(':');
                string path = rest;
                // A trailing ":SIZE" needs its unit (":8G", not ":8"): device paths such as
                // /dev/disk/by-id/...:11 end in digits after a colon.
                if (last > 0 && rest.Length > last + 1 && char.IsLetter(rest[^1]) && Sizes.TryParse(rest[(last + 1)..], out _, out _))
                {
                    if (!TrySize(rest[(last + 1)..], out size, out error)) return false;
                    path = rest[..last];
                }
                spec = new BackendSpec(BackendKind.File, path, size);
                return true;
            case "volume":
                if (!EdgeBlock.Volumes.PoolNames.TrySplit(rest, out string pool, out string volume) || !EdgeBlock.Volumes.PoolNames.IsValid(volume))
                {
                    error = rest.Contains('@')
                        ? $"'{text}': a snapshot is read-only and cannot be exported; clone it (edgeblock volume clone) and export the clone"
                        : $"'{text}': use volume:POOL/NAME (names of letters, digits, '.', '_' or '-')";
                    return false;
                }
                spec = new BackendSpec(BackendKind.Volume, $"{pool}/{volume}", null);
                return true;
            default:
                error = $"'{text}' is not a backend; use {Syntax}";
                return false;
        }
    }

    private static bool TrySize(string text, out long? size, out string error)
    {
        size = null;
        if (!Sizes.TryParse(text, out long bytes, out error)) return false;
        if (bytes < 1 << 20 || bytes % 4096 != 0)
        {
            error = $"size {text} ({bytes} bytes): it must be at least 1M and a multiple of 4K";
            return false;
        }
        size = bytes;
        return true;
    }

    /// <summary>The pool of a volume backend.</summary>
    public string PoolName => Kind == BackendKind.Volume ? Path![..Path!.IndexOf('/')] : throw new InvalidOperationException("not a volume backend");

    /// <summary>The volume of a volume backend.</summary>
    public string VolumeName => Kind == BackendKind.Volume ? Path![(Path!.IndexOf('/') + 1)..] : throw new InvalidOperationException("not a volume backend");

    /// <summary>The file path, absolute (a relative one is under the data directory).</summary>
    public string FullPath(string dataDirectory) => System.IO.Path.GetFullPath(Path!, dataDirectory);

    /// <summary>Checks what can be checked without opening: the file's directory exists, a missing file has a size.</summary>
    public bool TryCheck(string dataDirectory, out string error)
    {
        error = "";
        if (Kind != BackendKind.File) return true;
        string full = FullPath(dataDirectory);
        string? dir = System.IO.Path.GetDirectoryName(full);
        if (dir != null && !Directory.Exists(dir))
        {
            error = $"directory {dir} does not exist (create it first, or choose another path)";
            return false;
        }
        if (Directory.Exists(full))
        {
            error = $"{full} is a directory, not a file or block device";
            return false;
        }
        if (SizeBytes == null && !File.Exists(full))
        {
            error = $"{full} does not exist; give a size to create it (file:{Path}:SIZE)";
            return false;
        }
        return true;
    }

    /// <summary>Opens the device (creating a sparse file when needed). Throws <see cref="ManagementException"/> naming the problem.</summary>
    public IBlockDevice Open(string dataDirectory)
    {
        if (!TryCheck(dataDirectory, out string error)) throw ManagementException.Invalid($"backend {this}: {error}");
        try
        {
            return Kind switch
            {
                BackendKind.Null => new NullBlockDevice(SizeBytes ?? DefaultNullSize),
                BackendKind.Memory => new MemoryBlockDevice(SizeBytes!.Value),
                BackendKind.Volume => throw ManagementException.Invalid($"backend {this}: volumes are opened through the daemon's pools"),
                _ => FileBlockDevice.Open(FullPath(dataDirectory), SizeBytes ?? 0),
            };
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or InvalidOperationException
                                       or PlatformNotSupportedException or OutOfMemoryException)
        {
            throw ManagementException.Invalid($"backend {this}: cannot open: {ex.Message}");
        }
    }

    public override string ToString() => Kind switch
    {
        BackendKind.Null => SizeBytes is { } s ? $"null:{SizeText(s)}" : "null",
        BackendKind.Memory => $"memory:{SizeText(SizeBytes!.Value)}",
        BackendKind.Volume => $"volume:{Path}",
        _ => SizeBytes is { } f ? $"file:{Path}:{SizeText(f)}" : $"file:{Path}",
    };

    private static string SizeText(long bytes)
    {
        foreach (var (suffix, shift) in new[] { ("T", 40), ("G", 30), ("M", 20), ("K", 10) })
            if (bytes % (1L << shift) == 0) return $"{bytes >> shift}{suffix}";
        return bytes.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }
}
