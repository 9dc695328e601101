namespace EdgeBlock.Images;

/// <summary>
/// Writes an image of a fixed virtual size from data given in ascending offsets; ranges never written read as zeros
/// (holes in a raw file, unallocated clusters in qcow2). <see cref="Complete"/> writes what remains and syncs the file.
/// </summary>
public interface IImageWriter : IDisposable
{
    long VirtualSize { get; }

    void Write(long offset, ReadOnlySpan<byte> data);

    void Complete();
}

/// <summary>Creates writers by format.</summary>
public static class ImageWriters
{
    public static IImageWriter Create(string path, ImageFormat format, long virtualSize, Qcow2Compression compression = Qcow2Compression.None) =>
        format == ImageFormat.Qcow2 ? new Qcow2Writer(path, virtualSize, compression)
        : compression == Qcow2Compression.None ? new RawWriter(path, virtualSize)
        : throw new ImageException($"{path}: raw images cannot be compressed (use --format qcow2)");
}
