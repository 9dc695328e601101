using System.Buffers.Binary;
using System.Text;

namespace EdgeBlock.Images;

/// <summary>
/// A qcow2 header (docs/interop/qcow2.txt in qemu), parsed and checked against the file's real length before anything
/// else is read: every offset must lie inside the file and past the header cluster, every size must fit what the
/// format allows, and every feature the reader does not implement is refused by name. All fields are big-endian.
/// </summary>
internal sealed class Qcow2Header
{
    public const uint Magic = 0x514649fb; // "QFI\xfb"
    public const int V2Length = 72;
    public const int V3Length = 104;
    public const int MinClusterBits = 9, MaxClusterBits = 21; // qemu's MIN/MAX_CLUSTER_BITS
    public const int MaxL1Bytes = 32 << 20;                   // qemu's QCOW_MAX_L1_SIZE
    public const int MaxBackingNameLength = 1023;             // qemu's limit for backing_file_size

    // Incompatible feature bits (header offset 72).
    public const int DirtyBit = 0, CorruptBit = 1, ExternalDataBit = 2, CompressionTypeBit = 3, ExtendedL2Bit = 4;
    private const ulong KnownIncompatible = (1UL << 5) - 1;

    // Header extension types.
    private const uint ExtensionEnd = 0, BackingFormatExtension = 0xe2792aca, ExternalDataExtension = 0x44415441, EncryptionExtension = 0x0537be77;

    public int Version { get; private init; }
    public int ClusterBits { get; private init; }
    public long ClusterSize => 1L << ClusterBits;
    public long VirtualSize { get; private init; }
    public int L1Size { get; private init; }
    public long L1Offset { get; private init; }
    public long RefcountTableOffset { get; private init; }
    public int RefcountTableClusters { get; private init; }
    public int SnapshotCount { get; private init; }
    public ulong IncompatibleFeatures { get; private init; }
    public int RefcountOrder { get; private init; }
    public Qcow2Compression CompressionType { get; private init; }
    public bool ExtendedL2 => (IncompatibleFeatures & (1UL << ExtendedL2Bit)) != 0;
    public bool Dirty => (IncompatibleFeatures & (1UL << DirtyBit)) != 0;
    public string? BackingFile { get; private init; }
    public string? BackingFormat { get; private set; }

    /// <summary>Bytes per L2 entry: 8, or 16 with extended L2 (the second word is the subcluster bitmap).</summary>
    public int L2EntryBytes => ExtendedL2 ? 16 : 8;
    public long L2Entries => ClusterSize / L2EntryBytes;

    /// <summary>Reads and checks the header of a file of <paramref name="fileLength"/> bytes.</summary>
    public static Qcow2Header Read(string path, Microsoft.Win32.SafeHandles.SafeFileHandle file, long fileLength)
    {
        if (fileLength < V2Length) throw Refuse(path, $"the file is {fileLength} bytes, shorter than a qcow2 header ({V2Length} bytes): truncated");
        // The header and its extensions live in the first cluster; read at most one of the smallest, then more if needed.
        Span<byte> head = stackalloc byte[V3Length + 8];
        int got = RandomAccess.Read(file, head, 0);
        head = head[..got];
        if (BinaryPrimitives.ReadUInt32BigEndian(head) != Magic) throw Refuse(path, "not a qcow2 image (no QFI\\xfb magic)");
        uint version = BinaryPrimitives.ReadUInt32BigEndian(head[4..]);
        if (version is not (2 or 3)) throw Refuse(path, $"qcow2 version {version} is not supported (2 and 3 are)");
        if (version == 3 && got < V3Length) throw Refuse(path, $"the file is {fileLength} bytes, shorter than a qcow2 v3 header ({V3Length} bytes): truncated");

        uint clusterBits = BinaryPrimitives.ReadUInt32BigEndian(head[20..]);
        if (clusterBits is < MinClusterBits or > MaxClusterBits)
            throw Refuse(path, $"cluster_bits {clusterBits} is out of range ({MinClusterBits} to {MaxClusterBits}: 512 B to 2 MiB clusters)");
        long clusterSize = 1L << (int)clusterBits;

        ulong size = BinaryPrimitives.ReadUInt64BigEndian(head[24..]);
        if (size >= 1UL << 63) throw Refuse(path, $"virtual size {size} is 2^63 or more");
        if (size % 512 != 0) throw Refuse(path, $"virtual size {size} is not a multiple of 512");

        uint crypt = BinaryPrimitives.ReadUInt32BigEndian(head[32..]);
        if (crypt != 0) throw Refuse(path, $"the image is encrypted (crypt_method {crypt}); decrypt it with qemu-img convert first");

        ulong incompatible = 0;
        int refcountOrder = 4, headerLength = V2Length;
        var compression = Qcow2Compression.Deflate;
        if (version == 3)
        {
            incompatible = BinaryPrimitives.ReadUInt64BigEndian(head[72..]);
            refcountOrder = (int)Math.Min(BinaryPrimitives.ReadUInt32BigEndian(head[96..]), 64);
            uint length = BinaryPrimitives.ReadUInt32BigEndian(head[100..]);
            if (length < V3Length || length % 8 != 0 || length > clusterSize)
                throw Refuse(path, $"header_length {length} is invalid (at least {V3Length}, a multiple of 8, within the first cluster)");
            headerLength = (int)length;
            if ((incompatible & (1UL << CompressionTypeBit)) != 0)
            {
                if (headerLength <= V3Length || got <= V3Length) throw Refuse(path, "the compression type feature is set but the header has no compression_type field");
                byte type = head[V3Length];
                compression = type switch
                {
                    0 => Qcow2Compression.Deflate,
                    1 => Qcow2Compression.Zstd,
                    _ => throw Refuse(path, $"compression_type {type} is unknown (0 deflate, 1 zstd)"),
                };
            }
        }
        CheckFeatures(path, incompatible, (int)clusterBits);
        if (refcountOrder > 6) throw Refuse(path, $"refcount_order {refcountOrder} is out of range (0 to 6)");

        var header = new Qcow2Header
        {
            Version = (int)version,
            ClusterBits = (int)clusterBits,
            VirtualSize = (long)size,
            IncompatibleFeatures = incompatible,
            RefcountOrder = refcountOrder,
            CompressionType = compression,
            L1Size = CheckedInt(path, "l1_size", BinaryPrimitives.ReadUInt32BigEndian(head[36..])),
            L1Offset = CheckedOffset(path, "l1_table_offset", BinaryPrimitives.ReadUInt64BigEndian(head[40..])),
            RefcountTableOffset = CheckedOffset(path, "refcount_table_offset", BinaryPrimitives.ReadUInt64BigEndian(head[48..])),
            RefcountTableClusters = CheckedInt(path, "refcount_table_clusters", BinaryPrimitives.ReadUInt32BigEndian(head[56..])),
            SnapshotCount = CheckedInt(path, "nb_snapshots", BinaryPrimitives.ReadUInt32BigEndian(head[60..])),
            BackingFile = ReadBackingName(path, file, fileLength, clusterSize,
                BinaryPrimitives.ReadUInt64BigEndian(head[8..]), BinaryPrimitives.ReadUInt32BigEndian(head[16..])),
        };
        header.CheckTables(path, fileLength, BinaryPrimitives.ReadUInt64BigEndian(head[64..]));
        header.ReadExtensions(path, file, fileLength, headerLength, BinaryPrimitives.ReadUInt64BigEndian(head[8..]));
        return header;
    }

    private static void CheckFeatures(string path, ulong incompatible, int clusterBits)
    {
        ulong unknown = incompatible & ~KnownIncompatible;
        if (unknown != 0)
            throw Refuse(path, $"unknown incompatible feature bits {string.Join(", ", Enumerable.Range(0, 64).Where(b => (unknown & (1UL << b)) != 0))} are set; this reader cannot read the image safely");
        if ((incompatible & (1UL << CorruptBit)) != 0)
            throw Refuse(path, "the image is marked corrupt; repair it with `qemu-img check -r all` first");
        if ((incompatible & (1UL << ExternalDataBit)) != 0)
            throw Refuse(path, "the image keeps its data in an external data file, which is not supported; convert it with `qemu-img convert` first");
        // Subclusters are cluster_size / 32 and must be at least 512 bytes (qemu refuses the same).
        if ((incompatible & (1UL << ExtendedL2Bit)) != 0 && clusterBits < 14)
            throw Refuse(path, $"extended L2 entries need clusters of at least 16 KiB (cluster_bits {clusterBits})");
    }

    private void CheckTables(string path, long fileLength, ulong snapshotsOffset)
    {
        long bytesPerL2 = L2Entries * ClusterSize;
        long needed = VirtualSize / bytesPerL2 + (VirtualSize % bytesPerL2 != 0 ? 1 : 0);
        if (L1Size < needed)
            throw Refuse(path, $"l1_size {L1Size} is too small for virtual size {VirtualSize} (it needs {needed} entries)");
        if ((long)L1Size * 8 > MaxL1Bytes)
            throw Refuse(path, $"l1_size {L1Size} overflows: the L1 table would be {(long)L1Size * 8} bytes, more than {MaxL1Bytes}");
        if (L1Size > 0) CheckRange(path, "L1 table (l1_table_offset)", L1Offset, (long)L1Size * 8, fileLength);
        if (RefcountTableClusters == 0) throw Refuse(path, "refcount_table_clusters is 0: the image has no refcount table");
        CheckRange(path, "refcount table (refcount_table_offset)", RefcountTableOffset, (long)RefcountTableClusters << ClusterBits, fileLength);
        if (SnapshotCount > 0)
            CheckRange(path, "snapshot table (snapshots_offset)", CheckedOffset(path, "snapshots_offset", snapshotsOffset), 1, fileLength);
    }

    /// <summary>Refuses a table at <paramref name="offset"/> that is unaligned, in the header cluster or not wholly inside the file.</summary>
    public void CheckRange(string path, string what, long offset, long length, long fileLength)
    {
        if (offset % ClusterSize != 0) throw Refuse(path, $"{what} at offset {offset} is not aligned to the cluster size {ClusterSize}");
        if (offset < ClusterSize) throw Refuse(path, $"{what} at offset {offset} points into the header cluster");
        if (offset > fileLength || length > fileLength - offset)
            throw Refuse(path, $"{what} at offset {offset} ({length} bytes) lies beyond the end of the file ({fileLength} bytes)");
    }

    private static string? ReadBackingName(string path, Microsoft.Win32.SafeHandles.SafeFileHandle file, long fileLength, long clusterSize, ulong offset, uint length)
    {
        if (offset == 0) return null;
        if (length == 0 || length > MaxBackingNameLength) throw Refuse(path, $"backing_file_size {length} is out of range (1 to {MaxBackingNameLength})");
        if (offset >= (ulong)clusterSize || offset + length > (ulong)clusterSize)
            throw Refuse(path, $"the backing file name (offset {offset}, {length} bytes) does not lie in the header cluster");
        if (offset + length > (ulong)fileLength) throw Refuse(path, $"the backing file name (offset {offset}, {length} bytes) lies beyond the end of the file: truncated");
        byte[] name = new byte[length];
        RandomAccess.Read(file, name, (long)offset);
        if (name.Contains((byte)0)) throw Refuse(path, "the backing file name contains a NUL byte");
        return Encoding.UTF8.GetString(name);
    }

    /// <summary>Walks the header extensions (8-byte aligned type/length/data records after the header) up to the end marker.</summary>
    private void ReadExtensions(string path, Microsoft.Win32.SafeHandles.SafeFileHandle file, long fileLength, int start, ulong backingOffset)
    {
        long end = Math.Min(ClusterSize, fileLength);
        if (backingOffset != 0) end = Math.Min(end, (long)backingOffset);
        byte[] area = new byte[Math.Max(0, end - start)]; // at most one cluster (2 MiB)
        int got = RandomAccess.Read(file, area, start);
        ReadOnlySpan<byte> rest = area.AsSpan(0, got);
        while (rest.Length >= 8)
        {
            uint type = BinaryPrimitives.ReadUInt32BigEndian(rest);
            uint length = BinaryPrimitives.ReadUInt32BigEndian(rest[4..]);
            if (type == ExtensionEnd) return;
            rest = rest[8..];
            if (length > rest.Length) throw Refuse(path, $"header extension 0x{type:x8} claims {length} bytes, past the end of the header area");
            ReadOnlySpan<byte> data = rest[..(int)length];
            switch (type)
            {
                case BackingFormatExtension: BackingFormat = Encoding.UTF8.GetString(data); break;
                case ExternalDataExtension: throw Refuse(path, $"the image names an external data file ('{Encoding.UTF8.GetString(data)}'), which is not supported");
                case EncryptionExtension: throw Refuse(path, "the image carries a full disk encryption header; decrypt it with qemu-img convert first");
            }
            int padded = (int)Math.Min((length + 7) & ~7u, (uint)rest.Length);
            rest = rest[padded..];
        }
        // Versions 2 images may end the extensions with the file; a v3 header area without an end marker is truncated.
        if (Version == 3 && end - start >= 8) throw Refuse(path, "the header extensions have no end marker: truncated or corrupt header");
    }

    private static int CheckedInt(string path, string field, uint value) =>
        value <= int.MaxValue ? (int)value : throw Refuse(path, $"{field} {value} is out of range");

    private static long CheckedOffset(string path, string field, ulong value) =>
        value < 1UL << 56 ? (long)value : throw Refuse(path, $"{field} {value} is beyond any file (offsets use 56 bits)");

    public static ImageException Refuse(string path, string problem) => new($"{path}: {problem}");
}
