using System.Buffers.Binary;
using System.IO.Hashing;
using System.Runtime.InteropServices;

namespace EdgeBlock.Cli;

/// <summary>What is wrong with a block read back under --verify.</summary>
internal enum VerifyError : byte
{
    None,
    /// <summary>No pattern header at all (never written, zeroes, or foreign data).</summary>
    NoHeader,
    /// <summary>The block carries another LBA's data (a misdirected write or read).</summary>
    WrongLba,
    /// <summary>The block was written by another run (stale data).</summary>
    WrongSeed,
    /// <summary>The header is right but the contents changed (CRC32C mismatch).</summary>
    BadCrc,
}

/// <summary>
/// The --verify block format (one per logical block, like fio's verify header): CRC32C of bytes 4.. of the block,
/// magic "EBV1", the LBA, the run's seed, a write generation, then pseudo-random bytes derived from all of those.
/// </summary>
internal static class VerifyBlock
{
    public const uint Magic = 0x31564245; // "EBV1" little endian
    public const int HeaderBytes = 32;

    /// <summary>Writes the pattern of <paramref name="lbaSize"/>-byte blocks starting at <paramref name="slba"/> into buffer.</summary>
    public static void Fill(Span<byte> buffer, int lbaSize, ulong slba, ulong seed, ulong generation)
    {
        for (int at = 0, i = 0; at < buffer.Length; at += lbaSize, i++)
            FillOne(buffer.Slice(at, lbaSize), slba + (ulong)i, seed, generation);
    }

    public static void FillOne(Span<byte> block, ulong lba, ulong seed, ulong generation)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(block[4..], Magic);
        BinaryPrimitives.WriteUInt64LittleEndian(block[8..], lba);
        BinaryPrimitives.WriteUInt64LittleEndian(block[16..], seed);
        BinaryPrimitives.WriteUInt64LittleEndian(block[24..], generation);
        var body = MemoryMarshal.Cast<byte, ulong>(block[HeaderBytes..]);
        ulong x = seed ^ lba * 0x9E3779B97F4A7C15UL ^ generation * 0xC2B2AE3D27D4EB4FUL | 1;
        for (int i = 0; i < body.Length; i++)
        {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            body[i] = x;
        }
        BinaryPrimitives.WriteUInt32LittleEndian(block, Crc32.HashToUInt32(Crc32ParameterSet.Crc32C, block[4..]));
    }

    /// <summary>Checks one block; <paramref name="foundLba"/> is the LBA its header names (for WrongLba).</summary>
    public static VerifyError Check(ReadOnlySpan<byte> block, ulong lba, ulong seed, out ulong foundLba)
    {
        foundLba = 0;
        if (BinaryPrimitives.ReadUInt32LittleEndian(block[4..]) != Magic) return VerifyError.NoHeader;
        foundLba = BinaryPrimitives.ReadUInt64LittleEndian(block[8..]);
        uint crc = Crc32.HashToUInt32(Crc32ParameterSet.Crc32C, block[4..]);
        if (crc != BinaryPrimitives.ReadUInt32LittleEndian(block)) return VerifyError.BadCrc;
        if (foundLba != lba) return VerifyError.WrongLba;
        if (BinaryPrimitives.ReadUInt64LittleEndian(block[16..]) != seed) return VerifyError.WrongSeed;
        return VerifyError.None;
    }

    public static string Describe(VerifyError error, ulong lba, ulong foundLba) => error switch
    {
        VerifyError.NoHeader => $"LBA {lba}: no verify header (never written, zeroes, or other data)",
        VerifyError.WrongLba => $"LBA {lba}: holds the data of LBA {foundLba}",
        VerifyError.WrongSeed => $"LBA {lba}: written by another run (seed differs)",
        VerifyError.BadCrc => $"LBA {lba}: CRC32C mismatch (contents changed)",
        _ => $"LBA {lba}: ok",
    };
}
