using System.Buffers.Binary;

namespace EdgeBlock.Nvme;

/// <summary>Identify Namespace data structure (CNS 00h, NVM command set), 4096 bytes.</summary>
public static class IdentifyNamespaceData
{
    public const int Size = 4096;

    /// <param name="blockCount">NSZE = NCAP.</param>
    /// <param name="usedBlocks">NUSE: allocated blocks (thin provisioning reports less than NSZE).</param>
    /// <param name="thin">NSFEAT bit 0: thin provisioning (NUSE is meaningful).</param>
    public static void Write(Span<byte> d, long blockCount, long usedBlocks, int blockSize, bool thin, bool deallocateReadsZeroes, ReadOnlySpan<byte> nguid, ulong eui64)
    {
        d = d[..Size];
        d.Clear();
        BinaryPrimitives.WriteInt64LittleEndian(d[0..], blockCount);   // NSZE
        BinaryPrimitives.WriteInt64LittleEndian(d[8..], blockCount);   // NCAP
        BinaryPrimitives.WriteInt64LittleEndian(d[16..], usedBlocks);  // NUSE
        d[24] = (byte)(thin ? 1 : 0);                                  // NSFEAT
        d[25] = 0;                                                     // NLBAF: one format (0's based)
        d[26] = 0;                                                     // FLBAS: format 0, no metadata
        // DLFEAT: bits 2:0 = 001b deallocated blocks read as zeroes; bit 3 = Write Zeroes may deallocate.
        d[33] = (byte)(deallocateReadsZeroes ? 0x09 : 0x00);
        nguid.CopyTo(d.Slice(104, 16));                                // NGUID
        BinaryPrimitives.WriteUInt64BigEndian(d[120..], eui64);        // EUI64 (big-endian, like an IEEE identifier)
        // LBAF0: MS = 0, LBADS = log2(block size), RP = 0 (best performance).
        d[128 + 2] = (byte)System.Numerics.BitOperations.Log2((uint)blockSize);
    }

    public static long Nsze(ReadOnlySpan<byte> d) => BinaryPrimitives.ReadInt64LittleEndian(d);
    public static int BlockSize(ReadOnlySpan<byte> d) => 1 << d[128 + 4 * (d[26] & 0xF) + 2];
}

/// <summary>Namespace Identification Descriptor list (CNS 03h).</summary>
public static class NamespaceDescriptorList
{
    public const byte TypeEui64 = 1, TypeNguid = 2, TypeUuid = 3, TypeCsi = 4;

    public static void Write(Span<byte> d, ReadOnlySpan<byte> nguid, Guid uuid)
    {
        d = d[..4096];
        d.Clear();
        int o = 0;
        d[o] = TypeNguid; d[o + 1] = 16; nguid.CopyTo(d[(o + 4)..]); o += 20;
        d[o] = TypeUuid; d[o + 1] = 16; uuid.TryWriteBytes(d.Slice(o + 4, 16), bigEndian: true, out _); o += 20;
        d[o] = TypeCsi; d[o + 1] = 1; d[o + 4] = 0; // NVM command set
    }
}
