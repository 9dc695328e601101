using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace EdgeBlock.Images;

/// <summary>
/// Reads one qcow2 layer: the L1 table (read whole at open: its size is checked against the file), one L2 table at a
/// time (cached: copies walk the disk in order), and clusters that are plain, zero, compressed (deflate or zstd) or,
/// with extended L2 entries, split into 32 subclusters that are each allocated, zero or unallocated.
/// </summary>
public sealed class Qcow2Reader : ImageReader
{
    private const ulong OffsetMask = 0x00ff_ffff_ffff_fe00;  // bits 9-55: L1 → L2 table, L2 → data cluster
    private const ulong CompressedFlag = 1UL << 62;
    private const ulong ZeroFlag = 1UL;                      // standard L2 entries, version 3
    private const int Subclusters = 32;

    private readonly ulong[] _l1;
    private readonly byte[] _l2;       // the cached L2 table
    private long _l2Offset = -1;
    private readonly byte[] _cluster;  // a decompressed cluster
    private long _clusterHost = -1;    // the compressed descriptor it came from
    private readonly byte[] _compressed;
    private readonly Qcow2Codec _codec;

    internal Qcow2Reader(string path, SafeFileHandle file, long fileLength, Qcow2Header header)
        : this(path, file, fileLength, header, l1: null, ownsFile: true)
    {
    }

    /// <param name="l1">The L1 table of the reader this one is forked from (never written after it is read), or null to read it.</param>
    private Qcow2Reader(string path, SafeFileHandle file, long fileLength, Qcow2Header header, ulong[]? l1, bool ownsFile)
        : base(path, file, fileLength, ownsFile)
    {
        Header = header;
        _l1 = l1 ?? ReadL1(header);
        _l2 = new byte[header.ClusterSize];
        _cluster = new byte[header.ClusterSize];
        // A compressed cluster's length field can name up to two clusters' worth of sectors.
        _compressed = new byte[header.ClusterSize * 2];
        _codec = new Qcow2Codec(header.CompressionType);
    }

    private ulong[] ReadL1(Qcow2Header header)
    {
        var l1 = new ulong[header.L1Size]; // checked: inside the file and at most 32 MiB
        byte[] raw = new byte[header.L1Size * 8L];
        ReadFile(header.L1Offset, raw);
        for (int i = 0; i < l1.Length; i++) l1[i] = BinaryPrimitives.ReadUInt64BigEndian(raw.AsSpan(i * 8));
        return l1;
    }

    internal Qcow2Header Header { get; }

    protected override ImageReader ForkLayer() => new Qcow2Reader(Path, File, FileLength, Header, _l1, ownsFile: false);

    public override ImageFormat Format => ImageFormat.Qcow2;
    public override long VirtualSize => Header.VirtualSize;
    public int Version => Header.Version;
    public long ClusterSize => Header.ClusterSize;
    public Qcow2Compression CompressionType => Header.CompressionType;
    public bool ExtendedL2 => Header.ExtendedL2;
    public string? BackingFileName => Header.BackingFile;
    public string? BackingFormat => Header.BackingFormat;

    public override ImageExtent LayerStatus(long offset, long maxLength)
    {
        long clusterSize = Header.ClusterSize;
        long l2Span = Header.L2Entries * clusterSize;
        long l1Index = offset / l2Span;
        ulong l1Entry = _l1[l1Index];
        long l2Offset = (long)(l1Entry & OffsetMask);
        if (l2Offset == 0)
            return new ImageExtent(offset, Math.Min(maxLength, (l1Index + 1) * l2Span - offset), ExtentKind.Unallocated);
        ReadOnlySpan<byte> l2 = L2Table(l2Offset);
        long inCluster = offset & (clusterSize - 1);
        int index = (int)(offset / clusterSize % Header.L2Entries);
        ulong entry = BinaryPrimitives.ReadUInt64BigEndian(l2[(index * Header.L2EntryBytes)..]);
        long clusterRest = Math.Min(maxLength, clusterSize - inCluster);
        if ((entry & CompressedFlag) != 0) return new ImageExtent(offset, clusterRest, ExtentKind.Data);
        long host = (long)(entry & OffsetMask);
        if (Header.ExtendedL2)
            return SubclusterStatus(offset, inCluster, clusterRest, host, BinaryPrimitives.ReadUInt64BigEndian(l2[(index * 16 + 8)..]));
        ExtentKind kind = Header.Version >= 3 && (entry & ZeroFlag) != 0 ? ExtentKind.Zero
            : host != 0 ? ExtentKind.Data
            : ExtentKind.Unallocated;
        if (kind == ExtentKind.Data) CheckDataCluster(offset, host);
        return new ImageExtent(offset, clusterRest, kind);
    }

    /// <summary>Extended L2: bits 0-31 say "subcluster allocated", bits 32-63 "subcluster reads as zeros".</summary>
    private ImageExtent SubclusterStatus(long offset, long inCluster, long clusterRest, long host, ulong bitmap)
    {
        long subSize = Header.ClusterSize / Subclusters;
        int first = (int)(inCluster / subSize);
        ExtentKind Kind(int i)
        {
            bool allocated = (bitmap & (1UL << i)) != 0, zero = (bitmap & (1UL << (32 + i))) != 0;
            if (allocated && zero) throw Refuse(offset, $"subcluster {i} is marked both allocated and zero");
            return allocated ? ExtentKind.Data : zero ? ExtentKind.Zero : ExtentKind.Unallocated;
        }
        ExtentKind kind = Kind(first);
        if (kind == ExtentKind.Data)
        {
            if (host == 0) throw Refuse(offset, "a subcluster is allocated but its cluster has no host offset");
            CheckDataCluster(offset, host);
        }
        int last = first;
        while (last + 1 < Subclusters && Kind(last + 1) == kind) last++;
        long length = Math.Min(clusterRest, (last + 1) * subSize - inCluster);
        return new ImageExtent(offset, length, kind);
    }

    private void CheckDataCluster(long offset, long host)
    {
        if (host % Header.ClusterSize != 0) throw Refuse(offset, $"its data cluster offset {host} is not aligned to the cluster size");
        if (host < Header.ClusterSize) throw Refuse(offset, $"its data cluster offset {host} points into the header cluster");
        if (host >= FileLength) throw Refuse(offset, $"its data cluster offset {host} lies beyond the end of the file ({FileLength} bytes)");
    }

    protected override void ReadLayerData(long offset, Span<byte> buffer)
    {
        long clusterSize = Header.ClusterSize;
        while (!buffer.IsEmpty)
        {
            long inCluster = offset & (clusterSize - 1);
            int n = (int)Math.Min(buffer.Length, clusterSize - inCluster);
            long l2Span = Header.L2Entries * clusterSize;
            ReadOnlySpan<byte> l2 = L2Table((long)(_l1[offset / l2Span] & OffsetMask));
            int index = (int)(offset / clusterSize % Header.L2Entries);
            ulong entry = BinaryPrimitives.ReadUInt64BigEndian(l2[(index * Header.L2EntryBytes)..]);
            if ((entry & CompressedFlag) != 0)
                Decompressed(offset, entry).AsSpan((int)inCluster, n).CopyTo(buffer);
            else
                ReadFile((long)(entry & OffsetMask) + inCluster, buffer[..n]);
            offset += n;
            buffer = buffer[n..];
        }
    }

    /// <summary>
    /// A compressed cluster: bits 0..x-1 (x = 62 - (cluster_bits - 8)) are the byte offset of the data, the bits above
    /// up to 61 the number of 512-byte sectors it takes beyond the first one.
    /// </summary>
    private byte[] Decompressed(long offset, ulong entry)
    {
        int x = 62 - (Header.ClusterBits - 8);
        long host = (long)(entry & ((1UL << x) - 1));
        if (host == _clusterHost) return _cluster;
        long sectors = (long)((entry & ~(CompressedFlag | (1UL << 63))) >> x) + 1;
        long length = sectors * 512 - (host & 511);
        if (host < Header.ClusterSize) throw Refuse(offset, $"its compressed data at {host} points into the header cluster");
        // The last sector may be cut by the end of the file (qemu writes only the bytes it has), nothing more.
        long roundedEnd = (FileLength + 511) & ~511L;
        if (host >= FileLength || length > roundedEnd - host)
            throw Refuse(offset, $"its compressed data ({length} bytes at {host}) runs past the end of the file ({FileLength} bytes)");
        Span<byte> source = _compressed.AsSpan(0, (int)length);
        ReadFile(host, source);
        _clusterHost = -1;
        if (!_codec.TryDecompress(source, _cluster, out string? problem))
            throw Refuse(offset, $"its compressed cluster at {host} ({length} bytes, {Header.CompressionType.Name()}) does not decompress: {problem}");
        _clusterHost = host;
        return _cluster;
    }

    private ReadOnlySpan<byte> L2Table(long l2Offset)
    {
        if (l2Offset != _l2Offset)
        {
            Header.CheckRange(Path, "an L2 table", l2Offset, Header.ClusterSize, FileLength);
            ReadFile(l2Offset, _l2);
            _l2Offset = l2Offset;
        }
        return _l2;
    }

    protected override void Release() => _codec.Dispose();

    /// <summary>The header cluster and the L1 table as the file holds them now (not as read at open).</summary>
    protected override void HashMetadata(System.Security.Cryptography.IncrementalHash hash)
    {
        byte[] header = new byte[Math.Min(FileLength, Header.ClusterSize)];
        ReadFile(0, header);
        hash.AppendData(header);
        byte[] l1 = new byte[Header.L1Size * 8L]; // checked at open: inside the file, at most 32 MiB
        ReadFile(Header.L1Offset, l1);
        hash.AppendData(l1);
    }

    private ImageException Refuse(long offset, string problem) => Qcow2Header.Refuse(Path, $"guest offset {offset}: {problem}");
}
