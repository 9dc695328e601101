using System.Buffers.Binary;

namespace EdgeBlock.Volumes.Tests;

/// <summary>
/// Self-describing 4 KiB blocks: the first 8 bytes carry a version number, the rest is derived
/// from it, so a read tells which write it came from and whether the block is intact.
/// Version 0 is the all-zero block. Odd versions are compressible (runs of one byte value),
/// even ones are not, so compressed volumes see both kinds.
/// </summary>
internal static class BlockPattern
{
    public const int Size = PoolLayout.BlockSize;

    public static void Fill(Span<byte> block, long version)
    {
        if (version == 0)
        {
            block.Clear();
            return;
        }
        BinaryPrimitives.WriteInt64LittleEndian(block, version);
        if ((version & 1) != 0)
        {
            for (int i = 8; i < Size; i++) block[i] = (byte)(version + i / 256);
            return;
        }
        ulong x = (ulong)version * 0x9E3779B97F4A7C15UL;
        for (int i = 8; i < Size; i += 8)
        {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            BinaryPrimitives.WriteUInt64LittleEndian(block[i..], x);
        }
    }

    /// <summary>The version a block holds, or -1 when it is not an intact pattern block.</summary>
    public static long Identify(ReadOnlySpan<byte> block)
    {
        long version = BinaryPrimitives.ReadInt64LittleEndian(block);
        Span<byte> expected = stackalloc byte[Size];
        Fill(expected, version);
        return block.SequenceEqual(expected) ? version : -1;
    }
}
