using System.Buffers.Binary;
using System.IO.Hashing;

namespace EdgeBlock.Nvme.Tcp;

/// <summary>
/// NVMe/TCP header and data digests: CRC32C, transmitted little-endian.
/// Backed by System.IO.Hashing (hardware accelerated); no allocation per call.
/// </summary>
public static class Crc32C
{
    public static uint Compute(ReadOnlySpan<byte> data) => Crc32.HashToUInt32(Crc32ParameterSet.Crc32C, data);

    public static void Write(Span<byte> dest, ReadOnlySpan<byte> data) =>
        BinaryPrimitives.WriteUInt32LittleEndian(dest, Compute(data));

    public static bool Verify(ReadOnlySpan<byte> data, ReadOnlySpan<byte> digest) =>
        BinaryPrimitives.ReadUInt32LittleEndian(digest) == Compute(data);
}
