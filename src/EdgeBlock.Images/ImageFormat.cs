namespace EdgeBlock.Images;

/// <summary>The image formats EdgeBlock reads and writes.</summary>
public enum ImageFormat
{
    Raw,
    Qcow2,
}

/// <summary>How qcow2 clusters are compressed (the header's compression_type; deflate for version 2).</summary>
public enum Qcow2Compression
{
    None = -1,
    Deflate = 0,
    Zstd = 1,
}

/// <summary>Format names as `qemu-img` and the CLI spell them.</summary>
public static class ImageFormatNames
{
    public static string Name(this ImageFormat format) => format == ImageFormat.Qcow2 ? "qcow2" : "raw";

    public static string Name(this Qcow2Compression compression) => compression switch
    {
        Qcow2Compression.Deflate => "deflate",
        Qcow2Compression.Zstd => "zstd",
        _ => "none",
    };

    public static bool TryParse(string text, out ImageFormat format)
    {
        format = text switch { "qcow2" => ImageFormat.Qcow2, "raw" => ImageFormat.Raw, _ => (ImageFormat)(-1) };
        return format >= 0;
    }

    public static bool TryParse(string text, out Qcow2Compression compression)
    {
        compression = text switch { "deflate" or "zlib" => Qcow2Compression.Deflate, "zstd" => Qcow2Compression.Zstd, "none" => Qcow2Compression.None, _ => (Qcow2Compression)(-2) };
        return compression >= Qcow2Compression.None;
    }
}
