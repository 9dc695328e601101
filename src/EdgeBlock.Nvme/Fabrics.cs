using System.Buffers.Binary;
using System.Text;

namespace EdgeBlock.Nvme;

/// <summary>The fields of a Connect command (SQE) and its 1024-byte data.</summary>
public static class Connect
{
    public const int DataSize = 1024;
    public const int NqnFieldSize = 256;
    /// <summary>The dynamic controller model: the host asks for "any" controller.</summary>
    public const ushort DynamicCntlid = 0xFFFF;
    /// <summary>CATTR bit 2: the host disables SQ flow control (no SQHD needed), allowing C2HData SUCCESS.</summary>
    public const byte CattrDisableSqFlowControl = 1 << 2;

    // SQE fields (CDW10..CDW12)
    public static ushort RecordFormat(in SubmissionQueueEntry sqe) => (ushort)(sqe.Cdw10 & 0xFFFF);
    public static ushort QueueId(in SubmissionQueueEntry sqe) => (ushort)(sqe.Cdw10 >> 16);
    /// <summary>SQSIZE, 0's based.</summary>
    public static ushort SqSize(in SubmissionQueueEntry sqe) => (ushort)(sqe.Cdw11 & 0xFFFF);
    public static byte Cattr(in SubmissionQueueEntry sqe) => (byte)(sqe.Cdw11 >> 16);
    /// <summary>Keep alive timeout in milliseconds.</summary>
    public static uint Kato(in SubmissionQueueEntry sqe) => sqe.Cdw12;

    // Data fields
    public static Guid HostId(ReadOnlySpan<byte> data) => new(data[..16]);
    public static ushort Cntlid(ReadOnlySpan<byte> data) => BinaryPrimitives.ReadUInt16LittleEndian(data[16..]);
    public static string SubsysNqn(ReadOnlySpan<byte> data) => ReadNqn(data.Slice(256, NqnFieldSize));
    public static string HostNqn(ReadOnlySpan<byte> data) => ReadNqn(data.Slice(512, NqnFieldSize));

    /// <summary>Byte offsets of the data fields (for IATTR/IPO in Connect Invalid Parameters).</summary>
    public const ushort CntlidOffset = 16, SubsysNqnOffset = 256, HostNqnOffset = 512;

    /// <summary>Connect Invalid Parameters response DW0: IPO in 31:16, IATTR bit 0 = 1 when the field is in the data.</summary>
    public static uint InvalidParameter(bool inData, ushort offset) => (uint)offset << 16 | (inData ? 1u : 0u);

    public static void WriteData(Span<byte> data, Guid hostId, ushort cntlid, string subsysNqn, string hostNqn)
    {
        data[..DataSize].Clear();
        hostId.TryWriteBytes(data);
        BinaryPrimitives.WriteUInt16LittleEndian(data[16..], cntlid);
        WriteNqn(data.Slice(256, NqnFieldSize), subsysNqn);
        WriteNqn(data.Slice(512, NqnFieldSize), hostNqn);
    }

    public static string ReadNqn(ReadOnlySpan<byte> field)
    {
        int end = field.IndexOf((byte)0);
        return Encoding.UTF8.GetString(end < 0 ? field : field[..end]);
    }

    public static void WriteNqn(Span<byte> field, string nqn)
    {
        field.Clear();
        int n = Encoding.UTF8.GetBytes(nqn, field);
        if (n >= field.Length) throw new ArgumentException($"NQN '{nqn}' is longer than {field.Length - 1} bytes", nameof(nqn));
    }
}

/// <summary>Property Get/Set fields.</summary>
public static class PropertyCommand
{
    /// <summary>ATTRIB bits 2:0: 0 = 4 bytes, 1 = 8 bytes.</summary>
    public static bool Is8Bytes(in SubmissionQueueEntry sqe) => (sqe.Cdw10 & 0x7) == 1;
    public static uint Offset(in SubmissionQueueEntry sqe) => sqe.Cdw11;
    public static ulong Value(in SubmissionQueueEntry sqe) => sqe.Cdw12 | (ulong)sqe.Cdw13 << 32;
}
