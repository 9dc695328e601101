using EdgeBlock.Interop;

namespace EdgeBlock.Images;

/// <summary>
/// What `qemu-img info` shows of one image of a chain: its format, virtual size, the bytes its file takes on disk,
/// the bytes of the virtual disk it holds data for, and for qcow2 its version, cluster size, compression type and
/// features. <see cref="Backing"/> is the next image down.
/// </summary>
public sealed record ImageInfo(
    string Path,
    string Format,
    long VirtualSize,
    long DiskBytes,
    long DataBytes,
    int? Version,
    long? ClusterSize,
    string? CompressionType,
    bool? ExtendedL2,
    bool? Dirty,
    string? BackingFile,
    string? BackingFormat,
    ImageInfo? Backing)
{
    /// <summary>Describes an opened image and its chain.</summary>
    public static ImageInfo Of(ImageReader image)
    {
        long disk = Native.Stat(image.Path, Native.STATX_BLOCKS, out Native.StatX st) == 0 ? (long)st.Blocks * 512 : 0;
        long data = 0;
        for (long offset = 0; offset < image.VirtualSize;)
        {
            ImageExtent e = image.LayerStatus(offset, image.VirtualSize - offset);
            if (e.Kind == ExtentKind.Data) data += e.Length;
            offset = e.End;
        }
        var q = image as Qcow2Reader;
        return new ImageInfo(image.Path, image.Format.Name(), image.VirtualSize, disk, data, q?.Version, q?.ClusterSize,
            q?.CompressionType.Name(), q?.ExtendedL2, q?.Header.Dirty, q?.BackingFileName, q?.BackingFormat,
            image.Backing is { } b ? Of(b) : null);
    }
}
