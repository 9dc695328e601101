using EdgeBlock.Interop;
using Microsoft.Win32.SafeHandles;

namespace EdgeBlock.Images;

/// <summary>
/// A raw image: the file is the disk. Holes come from lseek(SEEK_DATA/SEEK_HOLE), so a sparse file's holes are never
/// read; where the file system cannot tell (or the file is a block device), all of it is data, and the copy skips
/// blocks that read as zeros.
/// </summary>
public sealed class RawReader : ImageReader
{
    private bool _seekHoles = true;

    internal RawReader(string path, SafeFileHandle file, long fileLength, bool ownsFile = true) : base(path, file, fileLength, ownsFile)
    {
    }

    protected override ImageReader ForkLayer() => new RawReader(Path, File, FileLength, ownsFile: false) { _seekHoles = _seekHoles };

    public override ImageFormat Format => ImageFormat.Raw;

    /// <summary>The file's length rounded up to a sector (qemu does the same; the tail reads as zeros).</summary>
    public override long VirtualSize => (FileLength + 511) & ~511L;

    public override ImageExtent LayerStatus(long offset, long maxLength)
    {
        if (offset >= FileLength) return new ImageExtent(offset, maxLength, ExtentKind.Zero);
        if (_seekHoles)
        {
            long data = Native.Lseek(File, offset, Native.SEEK_DATA);
            if (data < 0 && Native.LastError == Native.ENXIO) return new ImageExtent(offset, maxLength, ExtentKind.Zero);
            if (data > offset) return new ImageExtent(offset, Math.Min(maxLength, data - offset), ExtentKind.Zero);
            if (data == offset)
            {
                long hole = Native.Lseek(File, offset, Native.SEEK_HOLE);
                if (hole > offset) return new ImageExtent(offset, Math.Min(maxLength, hole - offset), ExtentKind.Data);
            }
            _seekHoles = false; // not supported here (EINVAL, ENOTSUP): everything is data
        }
        return new ImageExtent(offset, maxLength, ExtentKind.Data);
    }

    protected override void ReadLayerData(long offset, Span<byte> buffer) => ReadFile(offset, buffer);
}
