using K4os.Compression.LZ4;

namespace EdgeBlock.Cli.Tests;

public sealed class BenchDataTests
{
    /// <summary>lz4 on a 16 KiB chunk, as a compressed volume stores it (ChunkCodec: L00_FAST).</summary>
    private static double Lz4Ratio(ReadOnlySpan<byte> chunk)
    {
        var target = new byte[LZ4Codec.MaximumOutputSize(chunk.Length)];
        int length = LZ4Codec.Encode(chunk, target, LZ4Level.L00_FAST);
        Assert.True(length > 0);
        return chunk.Length / (double)length;
    }

    [Theory]
    [InlineData(1, 0.98, 1.0)]
    [InlineData(2, 1.85, 2.1)]
    [InlineData(4, 3.5, 4.2)]
    public void AChunkOfFreshWrites_CompressesAboutNToOne(int ratio, double low, double high)
    {
        // Four 4 KiB writes, each filled anew (as the bench does per write), merged in one 16 KiB chunk.
        var chunk = new byte[16 * 1024];
        for (int i = 0; i < 4; i++) CompressibleData.Fill(chunk.AsSpan(i * 4096, 4096), ratio, seed: 100 + (ulong)i);

        double r = Lz4Ratio(chunk);

        Assert.InRange(r, low, high);
    }

    [Fact]
    public void ABlock_IsRandomThenTheText_AndTheRandomPartChangesWithTheSeed()
    {
        var a = new byte[8192];
        var b = new byte[8192];
        CompressibleData.Fill(a, 2, seed: 1);
        CompressibleData.Fill(b, 2, seed: 2);

        string text = string.Concat(Enumerable.Repeat(CompressibleData.Text, 100));
        Assert.Equal(text[..2048], System.Text.Encoding.ASCII.GetString(a, 2048, 2048));
        Assert.Equal(text[..2048], System.Text.Encoding.ASCII.GetString(a, 6144, 2048));
        Assert.False(a.AsSpan(0, 2048).SequenceEqual(a.AsSpan(4096, 2048)), "each block of one write has its own random bytes");
        Assert.False(a.AsSpan(0, 2048).SequenceEqual(b.AsSpan(0, 2048)), "another write, other random bytes");
        Assert.True(a.AsSpan(0, 2048).ContainsAnyExcept((byte)0));
    }

    [Fact]
    public void AShortOrOddBuffer_GetsItsShareOfRandomBytes()
    {
        var small = new byte[512];
        CompressibleData.Fill(small, 3, seed: 9); // 170 random bytes: not a whole number of words

        Assert.True(small.AsSpan(160, 10).ContainsAnyExcept((byte)0));
        Assert.Equal(CompressibleData.Text, System.Text.Encoding.ASCII.GetString(small, 170, CompressibleData.Text.Length));
    }
}
