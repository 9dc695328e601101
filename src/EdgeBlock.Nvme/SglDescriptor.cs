using System.Buffers.Binary;

namespace EdgeBlock.Nvme;

/// <summary>A 16-byte SGL descriptor (SGL1 of a fabrics command). Fabrics require SGLs (PSDT 01b or 10b).</summary>
public readonly ref struct SglDescriptor
{
    public const int Size = 16;

    /// <summary>SGL Data Block descriptor (type 0), subtype Offset (1h): data is in the capsule.</summary>
    public const byte InCapsuleDataBlock = 0x01;
    /// <summary>Transport SGL Data Block descriptor (type 5), subtype Transport Specific (Ah): R2T/C2HData moves the data.</summary>
    public const byte TransportDataBlock = 0x5A;

    private readonly ReadOnlySpan<byte> _b;
    public SglDescriptor(ReadOnlySpan<byte> bytes) => _b = bytes;

    public ulong Address => BinaryPrimitives.ReadUInt64LittleEndian(_b);
    public uint Length => BinaryPrimitives.ReadUInt32LittleEndian(_b[8..]);
    /// <summary>SGL identifier: descriptor type in bits 7:4, subtype in bits 3:0.</summary>
    public byte Identifier => _b[15];
    public int DescriptorType => _b[15] >> 4;
    public int SubType => _b[15] & 0xF;

    public static void Write(Span<byte> dest, ulong address, uint length, byte identifier)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(dest, address);
        BinaryPrimitives.WriteUInt32LittleEndian(dest[8..], length);
        dest.Slice(12, 3).Clear();
        dest[15] = identifier;
    }
}
