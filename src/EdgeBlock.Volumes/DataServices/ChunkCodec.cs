using System.Collections.Concurrent;
using K4os.Compression.LZ4;
using ZstdSharp;

namespace EdgeBlock.Volumes;

/// <summary>
/// Compression of one chunk. A chunk is stored compressed only when that saves at least one
/// sector; otherwise it is stored raw, so a volume never stores more than its data.
/// zstd contexts are not thread-safe and costly to create: each codec keeps a few and lends
/// them per call (no allocation per chunk in steady state).
/// </summary>
internal sealed class ChunkCodec
{
    private readonly VolumeCompression _compression;
    private readonly int _level;
    private readonly ConcurrentBag<Compressor> _compressors = [];
    private static readonly ConcurrentBag<Decompressor> Decompressors = [];

    public ChunkCodec(VolumeCompression compression, int level)
    {
        _compression = compression;
        _level = level;
    }

    /// <summary>
    /// Compresses a whole chunk into stored (ChunkSize bytes); returns the codec and the stored
    /// length, or Raw when compression would not save a sector (stored is then unused).
    /// </summary>
    public (ChunkCodecKind Codec, int Length) Compress(ReadOnlySpan<byte> chunk, Span<byte> stored)
    {
        // Anything longer than this fills as many sectors as the raw chunk.
        Span<byte> target = stored[..(ChunkLayout.ChunkSize - ChunkLayout.SectorSize)];
        switch (_compression)
        {
            case VolumeCompression.Lz4:
            {
                int length = NativeLz4.Available ? NativeLz4.Compress(chunk, target) : LZ4Codec.Encode(chunk, target, LZ4Level.L00_FAST);
                return length > 0 ? (ChunkCodecKind.Lz4, length) : (ChunkCodecKind.Raw, ChunkLayout.ChunkSize);
            }
            case VolumeCompression.Zstd:
            {
                if (!_compressors.TryTake(out Compressor? compressor)) compressor = new Compressor(_level);
                try
                {
                    return compressor.TryWrap(chunk, target, out int length) && length > 0
                        ? (ChunkCodecKind.Zstd, length)
                        : (ChunkCodecKind.Raw, ChunkLayout.ChunkSize);
                }
                finally
                {
                    _compressors.Add(compressor);
                }
            }
            default:
                return (ChunkCodecKind.Raw, ChunkLayout.ChunkSize);
        }
    }

    /// <summary>Decompresses stored bytes into a whole chunk; false when they do not decode to exactly one chunk.</summary>
    public static bool Decompress(ChunkCodecKind codec, ReadOnlySpan<byte> stored, Span<byte> chunk)
    {
        switch (codec)
        {
            case ChunkCodecKind.Lz4:
                return (NativeLz4.Available ? NativeLz4.Decompress(stored, chunk) : LZ4Codec.Decode(stored, chunk)) == ChunkLayout.ChunkSize;
            case ChunkCodecKind.Zstd:
            {
                if (!Decompressors.TryTake(out Decompressor? decompressor)) decompressor = new Decompressor();
                try
                {
                    return decompressor.TryUnwrap(stored, chunk, out int written) && written == ChunkLayout.ChunkSize;
                }
                catch (ZstdException)
                {
                    return false; // damaged frame: the caller reports a read error
                }
                finally
                {
                    Decompressors.Add(decompressor);
                }
            }
            default:
                return false;
        }
    }
}
