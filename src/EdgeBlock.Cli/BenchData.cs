using System.Runtime.InteropServices;
using System.Text;

namespace EdgeBlock.Cli;

/// <summary>
/// What `--compressible N` writes: each 4 KiB block starts with 4096/N pseudo-random bytes and goes on with a
/// repeated text, so lz4 or zstd store it at about 1/N of its size (N = 1: incompressible). The random part is new
/// for every write: a compressor must not find one block's random bytes again in another block of the same chunk.
/// bench/run.sh writes the same layout to a file for its `lz4 -b1` anchor; keep the two in step.
/// </summary>
internal static class CompressibleData
{
    public const int BlockBytes = 4096;
    public const int MaxRatio = 64;
    public const string Text = "EdgeBlock compressible data ";

    /// <summary>One block of the repeated text, copied behind each block's random part.</summary>
    private static readonly byte[] Filler = Enumerable.Repeat(Encoding.ASCII.GetBytes(Text), BlockBytes / Text.Length + 1)
        .SelectMany(b => b).Take(BlockBytes).ToArray();

    /// <summary>Fills buffer block by block (a short last block gets its share too); seed picks the random bytes.</summary>
    public static void Fill(Span<byte> buffer, int ratio, ulong seed)
    {
        // SplitMix64's finalizer: neighbouring seeds (and 0) still start unrelated streams.
        ulong x = seed + 0x9E3779B97F4A7C15UL;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
        x = (x ^ (x >> 31)) | 1;
        for (int at = 0; at < buffer.Length; at += BlockBytes)
        {
            Span<byte> block = buffer.Slice(at, Math.Min(BlockBytes, buffer.Length - at));
            int random = block.Length / ratio;
            Span<ulong> words = MemoryMarshal.Cast<byte, ulong>(block[..(random & ~7)]);
            for (int i = 0; i < words.Length; i++)
            {
                // xorshift64: ~1 ns per word, so a 4 KiB write at 2:1 costs the client about 0.3 µs
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                words[i] = x;
            }
            for (int i = random & ~7; i < random; i++) block[i] = (byte)(x >> (8 * (i & 7)));
            Filler.AsSpan(0, block.Length - random).CopyTo(block[random..]);
        }
    }
}
