using System.Buffers.Binary;

namespace EdgeBlock.Nvme;

/// <summary>
/// Byte offsets of SQE fields: what the error log's Parameter Error Location reports for a bad field.
/// </summary>
public static class SqeOffset
{
    public const ushort Opcode = 0, Flags = 1, Nsid = 4, FabricsType = 4, Cdw10 = 40, Cdw11 = 44, Cdw12 = 48, Cdw13 = 52;
    /// <summary>SLBA of Read/Write/Compare/Write Zeroes occupies CDW10-11.</summary>
    public const ushort Slba = Cdw10;
    /// <summary>Marks an error not tied to a field.</summary>
    public const ushort None = 0xFFFF;
}

/// <summary>
/// A read-only view over a 64-byte submission queue entry (command capsule), field names as in the spec.
/// </summary>
public readonly ref struct SubmissionQueueEntry
{
    public const int Size = 64;
    private readonly ReadOnlySpan<byte> _b;

    public SubmissionQueueEntry(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < Size) throw new ArgumentException("an SQE is 64 bytes", nameof(bytes));
        _b = bytes;
    }

    public byte Opcode => _b[0];
    /// <summary>FUSE bits 1:0, PSDT bits 7:6.</summary>
    public byte Flags => _b[1];
    public int Psdt => _b[1] >> 6;
    public int Fuse => _b[1] & 0x3;
    public ushort CommandId => BinaryPrimitives.ReadUInt16LittleEndian(_b[2..]);
    public uint Nsid => BinaryPrimitives.ReadUInt32LittleEndian(_b[4..]);
    /// <summary>Fabrics commands carry FCTYPE where other commands carry NSID.</summary>
    public FabricsCommandType FabricsType => (FabricsCommandType)_b[4];
    public ulong Mptr => BinaryPrimitives.ReadUInt64LittleEndian(_b[16..]);
    public SglDescriptor Sgl1 => new(_b.Slice(24, SglDescriptor.Size));
    public uint Cdw10 => BinaryPrimitives.ReadUInt32LittleEndian(_b[40..]);
    public uint Cdw11 => BinaryPrimitives.ReadUInt32LittleEndian(_b[44..]);
    public uint Cdw12 => BinaryPrimitives.ReadUInt32LittleEndian(_b[48..]);
    public uint Cdw13 => BinaryPrimitives.ReadUInt32LittleEndian(_b[52..]);
    public uint Cdw14 => BinaryPrimitives.ReadUInt32LittleEndian(_b[56..]);
    public uint Cdw15 => BinaryPrimitives.ReadUInt32LittleEndian(_b[60..]);

    /// <summary>Starting LBA of Read/Write/Compare/Write Zeroes (CDW10-11).</summary>
    public ulong Slba => BinaryPrimitives.ReadUInt64LittleEndian(_b[40..]);
    /// <summary>Number of logical blocks, converted from the 0's based NLB (CDW12 15:0).</summary>
    public int BlockCount => (int)(Cdw12 & 0xFFFF) + 1;
    /// <summary>Force Unit Access (CDW12 bit 30).</summary>
    public bool Fua => (Cdw12 & (1u << 30)) != 0;
    /// <summary>Write Zeroes: Deallocate (CDW12 bit 25) lets the controller unmap the range.</summary>
    public bool WriteZeroesDeallocate => (Cdw12 & (1u << 25)) != 0;

    /// <summary>Dataset Management: number of ranges, converted from the 0's based NR (CDW10 7:0).</summary>
    public int DsmRangeCount => (int)(Cdw10 & 0xFF) + 1;
    /// <summary>Dataset Management: Attribute - Deallocate (CDW11 bit 2).</summary>
    public bool DsmDeallocate => (Cdw11 & (1u << 2)) != 0;
}

/// <summary>One 16-byte Dataset Management range: context attributes, length in blocks, starting LBA.</summary>
public readonly ref struct DsmRange
{
    public const int Size = 16;
    /// <summary>NR is 8 bits: at most 256 ranges per command.</summary>
    public const int MaxRanges = 256;
    private readonly ReadOnlySpan<byte> _b;

    public DsmRange(ReadOnlySpan<byte> bytes) => _b = bytes[..Size];

    /// <summary>The i-th range of a command's range list.</summary>
    public static DsmRange At(ReadOnlySpan<byte> list, int i) => new(list.Slice(i * Size, Size));

    public uint ContextAttributes => BinaryPrimitives.ReadUInt32LittleEndian(_b);
    public uint BlockCount => BinaryPrimitives.ReadUInt32LittleEndian(_b[4..]);
    public ulong Slba => BinaryPrimitives.ReadUInt64LittleEndian(_b[8..]);
}

/// <summary>Builds SQEs (used by the initiator and by tests).</summary>
public ref struct SubmissionQueueEntryWriter
{
    private readonly Span<byte> _b;

    public SubmissionQueueEntryWriter(Span<byte> bytes)
    {
        if (bytes.Length < SubmissionQueueEntry.Size) throw new ArgumentException("an SQE is 64 bytes", nameof(bytes));
        _b = bytes[..SubmissionQueueEntry.Size];
        _b.Clear();
    }

    public byte Opcode { set => _b[0] = value; }
    public byte Flags { set => _b[1] = value; }
    public ushort CommandId { set => BinaryPrimitives.WriteUInt16LittleEndian(_b[2..], value); }
    public uint Nsid { set => BinaryPrimitives.WriteUInt32LittleEndian(_b[4..], value); }
    public FabricsCommandType FabricsType { set => _b[4] = (byte)value; }
    public uint Cdw10 { set => BinaryPrimitives.WriteUInt32LittleEndian(_b[40..], value); }
    public uint Cdw11 { set => BinaryPrimitives.WriteUInt32LittleEndian(_b[44..], value); }
    public uint Cdw12 { set => BinaryPrimitives.WriteUInt32LittleEndian(_b[48..], value); }
    public uint Cdw13 { set => BinaryPrimitives.WriteUInt32LittleEndian(_b[52..], value); }
    public uint Cdw14 { set => BinaryPrimitives.WriteUInt32LittleEndian(_b[56..], value); }
    public uint Cdw15 { set => BinaryPrimitives.WriteUInt32LittleEndian(_b[60..], value); }
    public ulong Slba { set => BinaryPrimitives.WriteUInt64LittleEndian(_b[40..], value); }
    public Span<byte> Bytes => _b;

    /// <summary>Describes data carried in the capsule (SGL data block, offset subtype).</summary>
    public void SetInCapsuleData(uint length) => SglDescriptor.Write(_b.Slice(24, 16), 0, length, SglDescriptor.InCapsuleDataBlock);

    /// <summary>Describes data moved by the transport (R2T/H2CData or C2HData).</summary>
    public void SetTransportData(uint length) => SglDescriptor.Write(_b.Slice(24, 16), 0, length, SglDescriptor.TransportDataBlock);
}
