using System.Buffers.Binary;
using System.IO.Hashing;

namespace EdgeBlock.Volumes;

/// <summary>
/// On-drive layout of a pool member. Every drive starts with a 4 KiB label so a drive is
/// recognised on its own (which pool, which member, which format); data extents start at
/// 1 MiB so they stay aligned for O_DIRECT and for the drive's own erase blocks.
/// </summary>
public static class PoolLayout
{
    /// <summary>Format of labels and metadata records; bumped on any incompatible change.</summary>
    public const int FormatVersion = 1;

    /// <summary>Logical block size of every volume and the granularity of the per-extent valid bitmap.</summary>
    public const int BlockSize = 4096;

    public const int LabelSize = 4096;
    public const long DataOffset = 1 << 20;

    /// <summary>
    /// Default extent: 1 MiB. Thin allocation and copy-on-write work in extents, so smaller is
    /// cheaper for sparse data and snapshots; but every extent costs a map record (~50 bytes in
    /// RocksDB, ~100 bytes in memory), and 1 MiB keeps that at ~100 MiB of RAM per TiB
    /// written. Blocks inside an extent are tracked by a bitmap, so a 4 KiB write to a new
    /// extent never has to zero or copy the rest of it.
    /// </summary>
    public const int DefaultExtentSize = 1 << 20;
    public const int MinExtentSize = 64 * 1024;
    public const int MaxExtentSize = 64 << 20;

    private static ReadOnlySpan<byte> Magic => "EDGEBLKPOOLDRIVE"u8;

    public static bool IsValidExtentSize(long size) =>
        size >= MinExtentSize && size <= MaxExtentSize && (size & (size - 1)) == 0;

    /// <summary>Extents that fit on a drive of the given size.</summary>
    public static long ExtentsOn(long driveBytes, int extentSize) =>
        driveBytes <= DataOffset ? 0 : (driveBytes - DataOffset) / extentSize;

    public static byte[] FormatLabel(DriveLabel label)
    {
        var bytes = new byte[LabelSize];
        Span<byte> s = bytes;
        Magic.CopyTo(s);
        BinaryPrimitives.WriteInt32LittleEndian(s[16..], FormatVersion);
        label.PoolId.TryWriteBytes(s[20..36]);
        label.DriveId.TryWriteBytes(s[36..52]);
        BinaryPrimitives.WriteInt32LittleEndian(s[52..], label.Index);
        BinaryPrimitives.WriteInt32LittleEndian(s[56..], label.ExtentSize);
        BinaryPrimitives.WriteInt64LittleEndian(s[60..], label.ExtentCount);
        BinaryPrimitives.WriteUInt32LittleEndian(s[(LabelSize - 4)..], Crc32C(s[..(LabelSize - 4)]));
        return bytes;
    }

    /// <summary>Parses a label; null when the block holds no EdgeBlock label at all.</summary>
    public static DriveLabel? ParseLabel(ReadOnlySpan<byte> s, out string problem)
    {
        problem = "";
        if (s.Length < LabelSize || !s[..16].SequenceEqual(Magic))
        {
            problem = "no EdgeBlock pool label";
            return null;
        }
        if (BinaryPrimitives.ReadUInt32LittleEndian(s[(LabelSize - 4)..]) != Crc32C(s[..(LabelSize - 4)]))
        {
            problem = "the pool label is damaged (checksum mismatch)";
            return null;
        }
        int version = BinaryPrimitives.ReadInt32LittleEndian(s[16..]);
        if (version != FormatVersion)
        {
            problem = $"the pool label has format version {version}; this EdgeBlock reads version {FormatVersion}";
            return null;
        }
        return new DriveLabel(new Guid(s[20..36]), new Guid(s[36..52]), BinaryPrimitives.ReadInt32LittleEndian(s[52..]),
            BinaryPrimitives.ReadInt32LittleEndian(s[56..]), BinaryPrimitives.ReadInt64LittleEndian(s[60..]));
    }

    private static uint Crc32C(ReadOnlySpan<byte> data) => Crc32.HashToUInt32(Crc32ParameterSet.Crc32C, data);
}

/// <summary>What a drive's label says about it.</summary>
public sealed record DriveLabel(Guid PoolId, Guid DriveId, int Index, int ExtentSize, long ExtentCount);
