using System.IO.Compression;
using ZstdSharp;

namespace EdgeBlock.Images;

/// <summary>
/// qcow2's cluster compression: raw deflate (no zlib header; qemu uses a 4 KiB window) or one zstd frame. Compressed
/// data is followed by whatever comes next in the file (the length is rounded to sectors), so decoding stops when a
/// cluster is full, and a cluster that comes out short is an error.
/// </summary>
internal sealed class Qcow2Codec(Qcow2Compression type) : IDisposable
{
    private Compressor? _zstdCompressor;
    private Decompressor? _zstdDecompressor;
    private readonly MemoryStream _deflateOut = new();

    public Qcow2Compression Type { get; } = type;

    public unsafe bool TryDecompress(ReadOnlySpan<byte> source, Span<byte> cluster, out string? problem)
    {
        problem = null;
        try
        {
            if (Type == Qcow2Compression.Zstd)
            {
                nuint frame;
                fixed (byte* p = source) frame = ZstdSharp.Unsafe.Methods.ZSTD_findFrameCompressedSize(p, (nuint)source.Length);
                if (ZstdSharp.Unsafe.Methods.ZSTD_isError(frame))
                {
                    problem = "no complete zstd frame";
                    return false;
                }
                _zstdDecompressor ??= new Decompressor();
                int n = _zstdDecompressor.Unwrap(source[..(int)frame], cluster);
                if (n != cluster.Length) problem = $"{n} bytes instead of {cluster.Length}";
                return problem == null;
            }
            fixed (byte* p = source)
            {
                using var input = new UnmanagedMemoryStream(p, source.Length);
                using var inflate = new DeflateStream(input, CompressionMode.Decompress);
                int n = inflate.ReadAtLeast(cluster, cluster.Length, throwOnEndOfStream: false);
                if (n != cluster.Length) problem = $"{n} bytes instead of {cluster.Length}";
            }
            return problem == null;
        }
        catch (Exception e) when (e is ZstdException or InvalidDataException)
        {
            problem = e.Message;
            return false;
        }
    }

    /// <summary>Compresses a cluster into <paramref name="output"/>; false when it would not save a sector.</summary>
    public bool TryCompress(ReadOnlySpan<byte> cluster, Span<byte> output, out int length)
    {
        length = 0;
        int limit = cluster.Length - 512;
        if (Type == Qcow2Compression.Zstd)
        {
            _zstdCompressor ??= new Compressor(3);
            if (!_zstdCompressor.TryWrap(cluster, output, out length)) return false;
        }
        else
        {
            _deflateOut.SetLength(0);
            using (var deflate = new DeflateStream(_deflateOut, CompressionLevel.Optimal, leaveOpen: true)) deflate.Write(cluster);
            if (_deflateOut.Length > output.Length) return false;
            length = (int)_deflateOut.Length;
            _deflateOut.GetBuffer().AsSpan(0, length).CopyTo(output);
        }
        return length <= limit;
    }

    public void Dispose()
    {
        _zstdCompressor?.Dispose();
        _zstdDecompressor?.Dispose();
        _deflateOut.Dispose();
    }
}
