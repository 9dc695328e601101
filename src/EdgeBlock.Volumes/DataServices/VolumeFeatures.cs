namespace EdgeBlock.Volumes;

/// <summary>How a volume compresses its chunks.</summary>
public enum VolumeCompression : byte
{
    Off = 0,
    Lz4 = 1,
    Zstd = 2,
}

/// <summary>
/// The data services of a volume, chosen at creation and kept for its life (snapshots and
/// clones inherit them). A volume with any of them on stores redirect-on-write chunks; one
/// with none stores extents in place.
/// </summary>
public sealed record VolumeFeatures(VolumeCompression Compression = VolumeCompression.Off, int CompressionLevel = 0, bool Checksum = false, bool Encrypted = false)
{
    public static readonly VolumeFeatures None = new();

    /// <summary>zstd levels accepted (the library's range; 3 is its default).</summary>
    public const int MinZstdLevel = 1, MaxZstdLevel = 19, DefaultZstdLevel = 3;

    /// <summary>Whether the volume stores chunks (any data service on).</summary>
    public bool UsesChunks => Compression != VolumeCompression.Off || Checksum || Encrypted;

    /// <summary>The --compress spelling: off, lz4, zstd:LEVEL.</summary>
    public string CompressionText => Compression switch
    {
        VolumeCompression.Lz4 => "lz4",
        VolumeCompression.Zstd => $"zstd:{CompressionLevel}",
        _ => "off",
    };

    /// <summary>Parses off | lz4 | zstd[:LEVEL]; an error message names what is wrong.</summary>
    public static bool TryParseCompression(string? text, out VolumeCompression compression, out int level, out string error)
    {
        compression = VolumeCompression.Off;
        level = 0;
        error = "";
        string value = (text ?? "").Trim().ToLowerInvariant();
        if (value is "" or "off" or "none") return true;
        if (value == "lz4") { compression = VolumeCompression.Lz4; return true; }
        if (value == "zstd" || value.StartsWith("zstd:", StringComparison.Ordinal))
        {
            compression = VolumeCompression.Zstd;
            level = DefaultZstdLevel;
            if (value.Length > 4 && (!int.TryParse(value.AsSpan(5), System.Globalization.NumberStyles.None, null, out level) || level < MinZstdLevel || level > MaxZstdLevel))
            {
                error = $"compression '{text}': the zstd level must be a number from {MinZstdLevel} to {MaxZstdLevel} (zstd:3 is the default)";
                return false;
            }
            return true;
        }
        error = $"compression '{text}' is unknown: use off, lz4 or zstd[:LEVEL]";
        return false;
    }
}
