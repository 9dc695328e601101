using System.Buffers.Binary;

namespace EdgeBlock.Nvme;

/// <summary>A 16-byte completion queue entry (response capsule).</summary>
public static class CompletionQueueEntry
{
    public const int Size = 16;

    public static void Write(Span<byte> dest, ulong result, ushort sqHead, ushort sqId, ushort commandId, NvmeStatus status)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(dest, result);
        BinaryPrimitives.WriteUInt16LittleEndian(dest[8..], sqHead);
        BinaryPrimitives.WriteUInt16LittleEndian(dest[10..], sqId);
        BinaryPrimitives.WriteUInt16LittleEndian(dest[12..], commandId);
        BinaryPrimitives.WriteUInt16LittleEndian(dest[14..], status.ToField());
    }

    public static ulong Result(ReadOnlySpan<byte> cqe) => BinaryPrimitives.ReadUInt64LittleEndian(cqe);
    public static ushort SqHead(ReadOnlySpan<byte> cqe) => BinaryPrimitives.ReadUInt16LittleEndian(cqe[8..]);
    public static ushort SqId(ReadOnlySpan<byte> cqe) => BinaryPrimitives.ReadUInt16LittleEndian(cqe[10..]);
    public static ushort CommandId(ReadOnlySpan<byte> cqe) => BinaryPrimitives.ReadUInt16LittleEndian(cqe[12..]);
    public static NvmeStatus Status(ReadOnlySpan<byte> cqe) => NvmeStatus.FromField(BinaryPrimitives.ReadUInt16LittleEndian(cqe[14..]));
}
