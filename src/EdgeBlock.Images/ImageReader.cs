using EdgeBlock.Interop;
using Microsoft.Win32.SafeHandles;

namespace EdgeBlock.Images;

/// <summary>
/// One layer of an image (a raw file or a qcow2 file) and the chain below it. A layer says, range by range, whether it
/// holds data, zeros or nothing (<see cref="LayerStatus"/>); the chain resolves "nothing" through the backing images, so
/// that <see cref="Extents"/> lists exactly the ranges a copy must write and <see cref="Read"/> returns the guest's view.
/// Not thread-safe: one reader per thread (it keeps one cluster table and one cluster buffer); <see cref="Fork"/> gives
/// another thread its own reader over the same open files.
/// </summary>
public abstract class ImageReader : IDisposable
{
    /// <summary>False for a fork: the file belongs to the reader it was forked from.</summary>
    private readonly bool _ownsFile;

    protected ImageReader(string path, SafeFileHandle file, long fileLength, bool ownsFile = true)
    {
        Path = path;
        File = file;
        FileLength = fileLength;
        _ownsFile = ownsFile;
    }

    /// <summary>The image's full path (backing images: resolved as opened).</summary>
    public string Path { get; }

    public abstract ImageFormat Format { get; }

    /// <summary>The guest-visible size in bytes.</summary>
    public abstract long VirtualSize { get; }

    /// <summary>The image below this one, or null.</summary>
    public ImageReader? Backing { get; internal set; }

    protected SafeFileHandle File { get; }

    /// <summary>The file's length when it was opened: nothing past it is ever read.</summary>
    protected long FileLength { get; }

    /// <summary>What this layer alone holds from <paramref name="offset"/>: one run of at most <paramref name="maxLength"/> bytes (at least one byte).</summary>
    public abstract ImageExtent LayerStatus(long offset, long maxLength);

    /// <summary>Reads a range this layer reported as <see cref="ExtentKind.Data"/>.</summary>
    protected abstract void ReadLayerData(long offset, Span<byte> buffer);

    /// <summary>What the guest sees from <paramref name="offset"/>: data or zeros, through the backing chain.</summary>
    public ImageExtent Status(long offset, long maxLength)
    {
        ImageExtent e = LayerStatus(offset, maxLength);
        if (e.Kind != ExtentKind.Unallocated) return e;
        if (Backing is not { } backing || offset >= backing.VirtualSize) return e with { Kind = ExtentKind.Zero };
        return backing.Status(offset, Math.Min(e.Length, backing.VirtualSize - offset));
    }

    /// <summary>The whole virtual disk as merged runs of data and zeros, in order.</summary>
    public IEnumerable<ImageExtent> Extents()
    {
        ImageExtent? pending = null;
        for (long offset = 0; offset < VirtualSize;)
        {
            ImageExtent e = Status(offset, VirtualSize - offset);
            if (pending is { } p && p.Kind == e.Kind) pending = p with { Length = p.Length + e.Length };
            else
            {
                if (pending is { } done) yield return done;
                pending = e;
            }
            offset = e.End;
        }
        if (pending is { } last) yield return last;
    }

    /// <summary>Bytes of the virtual disk that hold data (this image and its backing chain): what an import writes at most.</summary>
    public long AllocatedBytes() => Extents().Where(e => e.Kind == ExtentKind.Data).Sum(e => e.Length);

    /// <summary>Reads the guest's view of [offset, offset + buffer.Length); past the virtual size is refused.</summary>
    public void Read(long offset, Span<byte> buffer)
    {
        if (offset < 0 || offset > VirtualSize || buffer.Length > VirtualSize - offset)
            throw new ArgumentOutOfRangeException(nameof(offset), $"{Path}: read of {buffer.Length} bytes at {offset} is outside the virtual size {VirtualSize}");
        while (!buffer.IsEmpty)
        {
            ImageExtent e = LayerStatus(offset, buffer.Length);
            Span<byte> part = buffer[..(int)e.Length];
            switch (e.Kind)
            {
                case ExtentKind.Data: ReadLayerData(offset, part); break;
                case ExtentKind.Unallocated when Backing is { } backing && offset < backing.VirtualSize:
                    int below = (int)Math.Min(part.Length, backing.VirtualSize - offset);
                    backing.Read(offset, part[..below]);
                    part[below..].Clear();
                    break;
                default: part.Clear(); break;
            }
            offset += part.Length;
            buffer = buffer[part.Length..];
        }
    }

    /// <summary>Reads file bytes at <paramref name="fileOffset"/>; what lies past the file's end reads as zeros (never read).</summary>
    protected void ReadFile(long fileOffset, Span<byte> buffer)
    {
        int inside = (int)Math.Clamp(FileLength - fileOffset, 0, buffer.Length);
        int done = 0;
        while (done < inside)
        {
            int n = RandomAccess.Read(File, buffer[done..inside], fileOffset + done);
            if (n == 0) break; // the file shrank since it was opened
            done += n;
        }
        buffer[done..].Clear();
    }

    /// <summary>
    /// A reader of the same image over the same open files (the same bytes, even if a path now names another file),
    /// with caches of its own, so that another thread can read at the same time (pread on a shared descriptor is
    /// safe). It must be disposed before this reader, which owns the files.
    /// </summary>
    public ImageReader Fork()
    {
        ImageReader fork = ForkLayer();
        fork.Backing = Backing?.Fork();
        return fork;
    }

    /// <summary>This layer alone, over the same file, not owning it (see <see cref="Fork"/>).</summary>
    protected abstract ImageReader ForkLayer();

    /// <summary>
    /// What identifies the image as it is now, one line per layer of the chain: path, size, inode, modification time
    /// and a SHA-256 of the metadata that maps the disk (qcow2: header cluster and L1 table; raw: the first 64 KiB),
    /// read from the file again. Two identities differ when any layer was replaced, rewritten or touched.
    /// </summary>
    public string Identity()
    {
        var lines = new List<string>();
        for (ImageReader? layer = this; layer != null; layer = layer.Backing)
        {
            int error = Native.Stat(layer.File, Native.STATX_BASIC | Native.STATX_INO | Native.STATX_MTIME, out Native.StatX st);
            if (error != 0) throw new ImageException($"{layer.Path}: cannot stat the image: {Native.Describe(error)}");
            using var hash = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
            layer.HashMetadata(hash);
            lines.Add($"{layer.Path} size={st.Size} ino={st.Ino} mtime={st.MtimeSeconds}.{st.MtimeNanoseconds:D9} sha256={Convert.ToHexStringLower(hash.GetHashAndReset())}");
        }
        return string.Join('\n', lines);
    }

    /// <summary>Feeds the layer's mapping metadata, read from the file now, to the identity's hash.</summary>
    protected virtual void HashMetadata(System.Security.Cryptography.IncrementalHash hash)
    {
        byte[] head = new byte[Math.Min(FileLength, 65536)];
        ReadFile(0, head);
        hash.AppendData(head);
    }

    /// <summary>Frees what a layer holds besides its file.</summary>
    protected virtual void Release() { }

    public void Dispose()
    {
        Release();
        Backing?.Dispose();
        if (_ownsFile) File.Dispose();
        GC.SuppressFinalize(this);
    }
}
