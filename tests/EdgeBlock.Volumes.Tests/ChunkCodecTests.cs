using K4os.Compression.LZ4;

namespace EdgeBlock.Volumes.Tests;

/// <summary>
/// lz4 chunks are compressed by the system's liblz4 and, where it is missing, by K4os's managed port: the two must
/// read each other's chunks (a pool written by one is read by the other), and damaged input must be a refusal.
/// </summary>
public class ChunkCodecTests
{
    private static readonly byte[] Chunk = DataServicesTests.Text(ChunkLayout.ChunkSize, 11);

    [Fact]
    public void NativeLz4_OnDebian_IsAvailable()
    {
        // liblz4-1 is part of every Debian install (systemd and apt link it): the fast path is the one that runs.
        Assert.True(NativeLz4.Available, "liblz4.so.1 did not load");
    }

    [Fact]
    public void NativeLz4Chunk_DecodedByK4os_IsTheChunk()
    {
        byte[] stored = new byte[ChunkLayout.ChunkSize];
        int length = NativeLz4.Compress(Chunk, stored);
        Assert.InRange(length, 1, ChunkLayout.ChunkSize / 2);

        byte[] back = new byte[ChunkLayout.ChunkSize];
        Assert.Equal(ChunkLayout.ChunkSize, LZ4Codec.Decode(stored.AsSpan(0, length), back));
        Assert.Equal(Chunk, back);
    }

    [Fact]
    public void K4osChunk_DecodedByNativeLz4_IsTheChunk()
    {
        byte[] stored = new byte[ChunkLayout.ChunkSize];
        int length = LZ4Codec.Encode(Chunk, stored, LZ4Level.L00_FAST);
        Assert.True(length > 0);

        byte[] back = new byte[ChunkLayout.ChunkSize];
        Assert.Equal(ChunkLayout.ChunkSize, NativeLz4.Decompress(stored.AsSpan(0, length), back));
        Assert.Equal(Chunk, back);
    }

    [Fact]
    public void Decompress_DamagedLz4_IsRefusedNotThrown()
    {
        byte[] stored = new byte[ChunkLayout.ChunkSize];
        var codec = new ChunkCodec(VolumeCompression.Lz4, 0);
        var (kind, length) = codec.Compress(Chunk, stored);
        Assert.Equal(ChunkCodecKind.Lz4, kind);
        // A match offset pointing before the start of the output: lz4's safe decoder must refuse it.
        stored[1] ^= 0xFF;
        stored[length / 2] ^= 0x5A;
        byte[] back = new byte[ChunkLayout.ChunkSize];
        Assert.False(ChunkCodec.Decompress(kind, stored.AsSpan(0, length), back));
    }
}
