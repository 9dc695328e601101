using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace EdgeBlock.Images;

/// <summary>
/// Writes a qcow2 version 3 image (64 KiB clusters, 16-bit refcounts) from data in ascending order: clusters that are
/// all zeros stay unallocated, the others are appended (compressed when asked and when that saves a sector). At
/// <see cref="Complete"/> the L2 tables, the L1 table, the refcount table and its blocks follow the data, every host
/// cluster counted (compressed clusters count once per cluster they touch, as qemu does), then the header goes in.
/// Memory: one cluster, the L2 tables of allocated ranges (8 bytes per cluster written) and a refcount per host cluster.
/// </summary>
public sealed class Qcow2Writer : IImageWriter
{
    public const int DefaultClusterBits = 16;
    private const int HeaderLength = 112; // v3 header with the compression_type byte, padded to 8
    private const int RefcountOrder = 4;  // 16-bit refcounts, qemu's default
    private const ulong Copied = 1UL << 63, Compressed = 1UL << 62;

    private readonly SafeFileHandle _file;
    private readonly string _path;
    private readonly int _clusterBits;
    private readonly long _clusterSize;
    private readonly long _l2Entries;
    private readonly Qcow2Codec? _codec;
    private readonly Dictionary<long, ulong[]> _l2 = [];  // by L1 index
    private readonly List<ushort> _refcounts = [1];      // cluster 0: the header
    private readonly byte[] _cluster;
    private readonly byte[] _packed;
    private long _current = -1;   // virtual cluster index buffered in _cluster
    private long _tail;           // next free byte of the file
    private bool _completed;

    public Qcow2Writer(string path, long virtualSize, Qcow2Compression compression = Qcow2Compression.None, int clusterBits = DefaultClusterBits)
    {
        if (virtualSize < 0 || virtualSize % 512 != 0) throw new ImageException($"{path}: virtual size {virtualSize} must be a multiple of 512");
        _path = path;
        VirtualSize = virtualSize;
        _clusterBits = clusterBits;
        _clusterSize = 1L << clusterBits;
        _l2Entries = _clusterSize / 8;
        _codec = compression == Qcow2Compression.None ? null : new Qcow2Codec(compression);
        _cluster = new byte[_clusterSize];
        _packed = new byte[_clusterSize * 2];
        _tail = _clusterSize;
        _file = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None);
    }

    public long VirtualSize { get; }

    public void Write(long offset, ReadOnlySpan<byte> data)
    {
        if (offset < 0 || data.Length > VirtualSize - offset)
            throw new ArgumentOutOfRangeException(nameof(offset), $"{_path}: write of {data.Length} bytes at {offset} past the virtual size {VirtualSize}");
        while (!data.IsEmpty)
        {
            long index = offset >> _clusterBits;
            if (index != _current)
            {
                if (index < _current) throw new InvalidOperationException($"{_path}: writes must come in ascending order ({offset} after cluster {_current})");
                FlushCluster();
                _current = index;
                Array.Clear(_cluster);
            }
            int inCluster = (int)(offset & (_clusterSize - 1));
            int n = (int)Math.Min(data.Length, _clusterSize - inCluster);
            data[..n].CopyTo(_cluster.AsSpan(inCluster));
            offset += n;
            data = data[n..];
        }
    }

    private void FlushCluster()
    {
        if (_current < 0 || !_cluster.AsSpan().ContainsAnyExcept((byte)0)) return;
        ulong[] table = L2For(_current);
        int slot = (int)(_current % _l2Entries);
        if (_codec != null && _codec.TryCompress(_cluster, _packed, out int length))
        {
            // Packed after the previous compressed cluster, within one host cluster.
            if ((_tail & (_clusterSize - 1)) + length > _clusterSize) _tail = AlignUp(_tail);
            RandomAccess.Write(_file, _packed.AsSpan(0, length), _tail);
            long sectors = ((_tail + length - 1) >> 9) - (_tail >> 9); // beyond the first one
            table[slot] = Compressed | ((ulong)sectors << (62 - (_clusterBits - 8))) | (ulong)_tail;
            Count(_tail >> _clusterBits, 1);
            _tail += length;
            return;
        }
        _tail = AlignUp(_tail);
        RandomAccess.Write(_file, _cluster, _tail);
        table[slot] = Copied | (ulong)_tail;
        Count(_tail >> _clusterBits, 1);
        _tail += _clusterSize;
    }

    private ulong[] L2For(long clusterIndex)
    {
        long l1Index = clusterIndex / _l2Entries;
        if (!_l2.TryGetValue(l1Index, out ulong[]? table)) _l2[l1Index] = table = new ulong[_l2Entries];
        return table;
    }

    private void Count(long hostCluster, int add)
    {
        while (_refcounts.Count <= hostCluster) _refcounts.Add(0);
        _refcounts[(int)hostCluster] += (ushort)add;
    }

    private long AlignUp(long offset) => (offset + _clusterSize - 1) & ~(_clusterSize - 1);

    public void Complete()
    {
        if (_completed) return;
        FlushCluster();
        _current = -1;
        _tail = AlignUp(_tail);

        // L2 tables, then the L1 table.
        long bytesPerL2 = _l2Entries * _clusterSize;
        int l1Size = (int)((VirtualSize + bytesPerL2 - 1) / bytesPerL2);
        ulong[] l1 = new ulong[l1Size];
        byte[] table = new byte[_clusterSize];
        foreach ((long l1Index, ulong[] entries) in _l2.OrderBy(p => p.Key))
        {
            for (int i = 0; i < entries.Length; i++) BinaryPrimitives.WriteUInt64BigEndian(table.AsSpan(i * 8), entries[i]);
            RandomAccess.Write(_file, table, _tail);
            l1[l1Index] = Copied | (ulong)_tail;
            Count(_tail >> _clusterBits, 1);
            _tail += _clusterSize;
        }
        long l1Offset = _tail;
        long l1Clusters = Math.Max(1, AlignUp(l1Size * 8L) >> _clusterBits);
        byte[] l1Bytes = new byte[l1Clusters << _clusterBits];
        for (int i = 0; i < l1Size; i++) BinaryPrimitives.WriteUInt64BigEndian(l1Bytes.AsSpan(i * 8), l1[i]);
        RandomAccess.Write(_file, l1Bytes, l1Offset);
        for (long c = 0; c < l1Clusters; c++) Count((l1Offset >> _clusterBits) + c, 1);
        _tail += l1Bytes.Length;

        (long refTableOffset, int refTableClusters) = WriteRefcounts();
        WriteHeader(l1Size, l1Offset, refTableOffset, refTableClusters);
        RandomAccess.FlushToDisk(_file);
        _completed = true;
    }

    /// <summary>
    /// The refcount table and blocks go last and count themselves: grow their number until it covers every cluster
    /// including their own.
    /// </summary>
    private (long Offset, int Clusters) WriteRefcounts()
    {
        long perBlock = _clusterSize * 8 / (1 << RefcountOrder);
        long start = _tail >> _clusterBits;
        long tableClusters = 1, blocks = 1;
        while (true)
        {
            long total = start + tableClusters + blocks;
            long needBlocks = (total + perBlock - 1) / perBlock;
            long needTable = Math.Max(1, (needBlocks * 8 + _clusterSize - 1) / _clusterSize);
            if (needBlocks == blocks && needTable == tableClusters) break;
            blocks = needBlocks;
            tableClusters = needTable;
        }
        for (long c = 0; c < tableClusters + blocks; c++) Count(start + c, 1);

        long tableOffset = start << _clusterBits;
        byte[] refTable = new byte[tableClusters << _clusterBits];
        byte[] block = new byte[_clusterSize];
        for (long b = 0; b < blocks; b++)
        {
            Array.Clear(block);
            long first = b * perBlock;
            for (long i = 0; i < perBlock && first + i < _refcounts.Count; i++)
                BinaryPrimitives.WriteUInt16BigEndian(block.AsSpan((int)(i * 2)), _refcounts[(int)(first + i)]);
            long blockOffset = (start + tableClusters + b) << _clusterBits;
            RandomAccess.Write(_file, block, blockOffset);
            BinaryPrimitives.WriteUInt64BigEndian(refTable.AsSpan((int)(b * 8)), (ulong)blockOffset);
        }
        RandomAccess.Write(_file, refTable, tableOffset);
        _tail = (start + tableClusters + blocks) << _clusterBits;
        return (tableOffset, (int)tableClusters);
    }

    private void WriteHeader(int l1Size, long l1Offset, long refTableOffset, int refTableClusters)
    {
        byte[] h = new byte[_clusterSize];
        Span<byte> s = h;
        BinaryPrimitives.WriteUInt32BigEndian(s, Qcow2Header.Magic);
        BinaryPrimitives.WriteUInt32BigEndian(s[4..], 3);
        BinaryPrimitives.WriteUInt32BigEndian(s[20..], (uint)_clusterBits);
        BinaryPrimitives.WriteUInt64BigEndian(s[24..], (ulong)VirtualSize);
        BinaryPrimitives.WriteUInt32BigEndian(s[36..], (uint)l1Size);
        BinaryPrimitives.WriteUInt64BigEndian(s[40..], (ulong)l1Offset);
        BinaryPrimitives.WriteUInt64BigEndian(s[48..], (ulong)refTableOffset);
        BinaryPrimitives.WriteUInt32BigEndian(s[56..], (uint)refTableClusters);
        bool zstd = _codec?.Type == Qcow2Compression.Zstd;
        BinaryPrimitives.WriteUInt64BigEndian(s[72..], zstd ? 1UL << Qcow2Header.CompressionTypeBit : 0);
        BinaryPrimitives.WriteUInt32BigEndian(s[96..], RefcountOrder);
        BinaryPrimitives.WriteUInt32BigEndian(s[100..], HeaderLength);
        s[104] = (byte)(zstd ? 1 : 0);
        // Bytes 112..119 stay zero: the end of the header extensions.
        RandomAccess.Write(_file, h, 0);
    }

    public void Dispose()
    {
        _codec?.Dispose();
        _file.Dispose();
    }
}
