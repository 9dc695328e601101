using Microsoft.Win32.SafeHandles;

namespace EdgeBlock.Images;

/// <summary>A sparse raw file: its length set up front, only the data written (the rest stays holes).</summary>
public sealed class RawWriter : IImageWriter
{
    private readonly SafeFileHandle _file;
    private readonly string _path;

    public RawWriter(string path, long virtualSize)
    {
        _path = path;
        VirtualSize = virtualSize;
        _file = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None);
        RandomAccess.SetLength(_file, virtualSize);
    }

    public long VirtualSize { get; }

    public void Write(long offset, ReadOnlySpan<byte> data)
    {
        if (offset < 0 || data.Length > VirtualSize - offset)
            throw new ArgumentOutOfRangeException(nameof(offset), $"{_path}: write of {data.Length} bytes at {offset} past the virtual size {VirtualSize}");
        RandomAccess.Write(_file, data, offset);
    }

    public void Complete() => RandomAccess.FlushToDisk(_file);

    public void Dispose() => _file.Dispose();
}
