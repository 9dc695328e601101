using System.Buffers.Binary;
using System.Text;

namespace EdgeBlock.Images.Tests;

/// <summary>
/// The hostile corpus, generated (never downloaded): a small valid qcow2 written by <see cref="Qcow2Writer"/>, then
/// one header field, table entry or file length changed per case.
/// </summary>
internal static class HostileImages
{
    public const long VirtualSize = 4 << 20;
    public const int ClusterSize = 65536;

    /// <summary>A valid 4 MiB image with data at 0 and 1 MiB (compressed with <paramref name="compression"/>).</summary>
    public static string Valid(string path, Qcow2Compression compression = Qcow2Compression.None)
    {
        using var writer = new Qcow2Writer(path, VirtualSize, compression);
        byte[] data = new byte[2 * ClusterSize];
        new Random(3).NextBytes(data.AsSpan(0, ClusterSize)); // one random cluster, one that compresses well
        data.AsSpan(ClusterSize).Fill(0x42);
        writer.Write(0, data);
        writer.Write(1 << 20, data);
        writer.Complete();
        return path;
    }

    public static ulong ReadU64(string path, long offset)
    {
        using var f = File.OpenHandle(path);
        Span<byte> b = stackalloc byte[8];
        RandomAccess.Read(f, b, offset);
        return BinaryPrimitives.ReadUInt64BigEndian(b);
    }

    public static void WriteU64(string path, long offset, ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(b, value);
        Patch(path, offset, b);
    }

    public static void WriteU32(string path, long offset, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b, value);
        Patch(path, offset, b);
    }

    public static void Patch(string path, long offset, ReadOnlySpan<byte> bytes)
    {
        using var f = File.OpenHandle(path, FileMode.Open, FileAccess.Write);
        RandomAccess.Write(f, bytes, offset);
    }

    /// <summary>The file offset of the first L2 table's first entry.</summary>
    public static long FirstL2Entry(string path) => (long)(ReadU64(path, ReadU64(path, 40) is var l1 ? (long)l1 : 0) & 0x00ff_ffff_ffff_fe00);

    /// <summary>Names a backing file in the header (the name stored at 1024, inside the header cluster).</summary>
    public static void SetBacking(string path, string name)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(name);
        Patch(path, 1024, bytes);
        WriteU64(path, 8, 1024);
        WriteU32(path, 16, (uint)bytes.Length);
    }
}
