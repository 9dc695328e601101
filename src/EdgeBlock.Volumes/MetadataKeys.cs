using System.Buffers.Binary;

namespace EdgeBlock.Volumes;

/// <summary>
/// Key layout in the pool's RocksDB. One byte of record type, then big-endian numbers so a
/// prefix scan returns a volume's extents in LBA order.
/// <list type="bullet">
/// <item><c>P</c> → pool record (JSON)</item>
/// <item><c>D</c> drive(4) → drive record (JSON)</item>
/// <item><c>V</c> volume(8) → volume record (JSON)</item>
/// <item><c>G</c> name → group record (JSON)</item>
/// <item><c>M</c> volume(8) extent(8) → extent map entry (binary, <see cref="ExtentRecord"/>)</item>
/// <item><c>R</c> drive(4) extent(8) → reference count (u32); absent = free</item>
/// <item><c>C</c> volume(8) chunk(8) → where a chunk of a chunk volume is stored (<see cref="ChunkRecord"/>); absent = zeroes</item>
/// <item><c>K</c> drive(4) extent(8) → (empty) the extent holds stored chunks</item>
/// <item><c>S</c> → the last scrub's state (JSON), so a scrub resumes after a restart</item>
/// <item><c>O</c> volume(8) → the volume's attached origin (JSON, <see cref="VolumeOriginRecord"/>) until its copy is done</item>
/// <item><c>B</c> volume(8) page(8) → a page of the origin's resolved-block bitmap (4 KiB, bit per 4 KiB block); absent = none resolved</item>
/// </list>
/// </summary>
internal static class MetadataKeys
{
    public const byte Pool = (byte)'P';
    public const byte Drive = (byte)'D';
    public const byte Volume = (byte)'V';
    public const byte Group = (byte)'G';
    public const byte Map = (byte)'M';
    public const byte Refcount = (byte)'R';
    public const byte Chunk = (byte)'C';
    public const byte Container = (byte)'K';
    public const byte ScrubRecord = (byte)'S';
    public const byte Origin = (byte)'O';
    public const byte OriginBits = (byte)'B';

    public static byte[] OriginKey(long volumeId)
    {
        byte[] key = VolumeKey(volumeId);
        key[0] = Origin;
        return key;
    }

    public static byte[] OriginBitsKey(long volumeId, long page)
    {
        byte[] key = MapKey(volumeId, page);
        key[0] = OriginBits;
        return key;
    }

    public static byte[] ScrubKey() => [ScrubRecord];

    public static byte[] PoolKey() => [Pool];

    public static byte[] DriveKey(int index)
    {
        var key = new byte[5];
        key[0] = Drive;
        BinaryPrimitives.WriteInt32BigEndian(key.AsSpan(1), index);
        return key;
    }

    public static byte[] VolumeKey(long id)
    {
        var key = new byte[9];
        key[0] = Volume;
        BinaryPrimitives.WriteInt64BigEndian(key.AsSpan(1), id);
        return key;
    }

    public static byte[] GroupKey(string name)
    {
        var key = new byte[1 + System.Text.Encoding.UTF8.GetByteCount(name)];
        key[0] = Group;
        System.Text.Encoding.UTF8.GetBytes(name, key.AsSpan(1));
        return key;
    }

    public static byte[] MapKey(long volumeId, long extent)
    {
        var key = new byte[17];
        key[0] = Map;
        BinaryPrimitives.WriteInt64BigEndian(key.AsSpan(1), volumeId);
        BinaryPrimitives.WriteInt64BigEndian(key.AsSpan(9), extent);
        return key;
    }

    public static (long VolumeId, long Extent) ParseMapKey(ReadOnlySpan<byte> key) =>
        (BinaryPrimitives.ReadInt64BigEndian(key[1..]), BinaryPrimitives.ReadInt64BigEndian(key[9..]));

    public static byte[] RefcountKey(int drive, long extent)
    {
        var key = new byte[13];
        key[0] = Refcount;
        BinaryPrimitives.WriteInt32BigEndian(key.AsSpan(1), drive);
        BinaryPrimitives.WriteInt64BigEndian(key.AsSpan(5), extent);
        return key;
    }

    public static (int Drive, long Extent) ParseRefcountKey(ReadOnlySpan<byte> key) =>
        (BinaryPrimitives.ReadInt32BigEndian(key[1..]), BinaryPrimitives.ReadInt64BigEndian(key[5..]));

    public static byte[] ChunkKey(long volumeId, long chunk)
    {
        byte[] key = MapKey(volumeId, chunk);
        key[0] = Chunk;
        return key;
    }

    /// <summary>The chunk key into a 17-byte buffer (the commit path reuses one).</summary>
    public static void WriteChunkKey(Span<byte> key, long volumeId, long chunk)
    {
        key[0] = Chunk;
        BinaryPrimitives.WriteInt64BigEndian(key[1..], volumeId);
        BinaryPrimitives.WriteInt64BigEndian(key[9..], chunk);
    }

    public static (long VolumeId, long Chunk) ParseChunkKey(ReadOnlySpan<byte> key) => ParseMapKey(key);

    public static byte[] ContainerKey(int drive, long extent)
    {
        byte[] key = RefcountKey(drive, extent);
        key[0] = Container;
        return key;
    }

    public static (int Drive, long Extent) ParseContainerKey(ReadOnlySpan<byte> key) => ParseRefcountKey(key);
}

/// <summary>
/// One chunk record: where the chunk is stored and the crc32c of its stored bytes.
/// <code>
/// 0  u8  record version (1)
/// 1  u64 location (<see cref="ChunkLocation"/>: drive, sector, length, codec)
/// 9  u32 crc32c of the stored bytes (0 when the volume keeps no checksums)
/// </code>
/// 13 bytes + a 17-byte key: what a 4 KiB random write adds to the metadata.
/// </summary>
internal static class ChunkRecord
{
    public const byte Version = 1;
    public const int Size = 13;

    public static void Encode(ChunkLocation location, uint crc, Span<byte> value)
    {
        value[0] = Version;
        BinaryPrimitives.WriteUInt64LittleEndian(value[1..], location.Packed);
        BinaryPrimitives.WriteUInt32LittleEndian(value[9..], crc);
    }

    public static (ChunkLocation Location, uint Crc) Decode(ReadOnlySpan<byte> value)
    {
        if (value.Length != Size || value[0] != Version)
        {
            throw new InvalidDataException($"chunk record of {value.Length} bytes, version {(value.Length > 0 ? value[0] : 0)}: expected version {Version}, {Size} bytes");
        }
        var location = new ChunkLocation(BinaryPrimitives.ReadUInt64LittleEndian(value[1..]));
        if (!location.IsMapped || location.Length is 0 or > ChunkLayout.ChunkSize || (location.Codec == ChunkCodecKind.Raw && location.Length != ChunkLayout.ChunkSize))
        {
            throw new InvalidDataException($"chunk record points at {location}: not a stored chunk");
        }
        return (location, BinaryPrimitives.ReadUInt32LittleEndian(value[9..]));
    }
}

/// <summary>
/// One extent map record. Versioned and flagged from the start so compression (variable
/// physical length), per-block checksums (kept under their own keys, flagged here) and
/// encryption can arrive without a format change.
/// <code>
/// 0  u8  record version (1)
/// 1  u8  flags (bit 0 compressed, bit 1 checksummed, bit 2 encrypted; none in version 1)
/// 2  u16 reserved (0)
/// 4  i32 drive index
/// 8  i64 physical extent number on that drive
/// 16 i32 physical length in bytes (= extent size while uncompressed)
/// 20 ..  valid-block bitmap, one bit per 4 KiB block of the extent, in little-endian 64-bit words
/// </code>
/// </summary>
internal static class ExtentRecord
{
    public const byte Version = 1;
    public const int HeaderSize = 20;

    /// <summary>Bitmap bytes: one bit per block, in whole 64-bit words.</summary>
    public static int BitmapBytes(int extentSize) => ExtentMapEntry.WordsFor(extentSize) * 8;

    public static byte[] Encode(ExtentMapEntry entry, int extentSize)
    {
        int bitmapBytes = BitmapBytes(extentSize);
        var value = new byte[HeaderSize + bitmapBytes];
        Span<byte> s = value;
        s[0] = Version;
        s[1] = entry.Flags;
        BinaryPrimitives.WriteInt32LittleEndian(s[4..], entry.Drive);
        BinaryPrimitives.WriteInt64LittleEndian(s[8..], entry.Physical);
        BinaryPrimitives.WriteInt32LittleEndian(s[16..], extentSize);
        Span<byte> bitmap = s[HeaderSize..];
        for (int i = 0; i < bitmapBytes; i += 8)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(bitmap[i..], Volatile.Read(ref entry.Valid[i / 8]));
        }
        return value;
    }

    public static ExtentMapEntry Decode(ReadOnlySpan<byte> s, int extentSize)
    {
        int bitmapBytes = BitmapBytes(extentSize);
        if (s.Length != HeaderSize + bitmapBytes || s[0] != Version)
        {
            throw new InvalidDataException($"extent record of {s.Length} bytes, version {(s.Length > 0 ? s[0] : 0)}: expected version {Version}, {HeaderSize + bitmapBytes} bytes");
        }
        if (s[1] != 0)
        {
            throw new InvalidDataException($"extent record flags 0x{s[1]:x2} need a newer EdgeBlock");
        }
        var entry = new ExtentMapEntry(BinaryPrimitives.ReadInt32LittleEndian(s[4..]), BinaryPrimitives.ReadInt64LittleEndian(s[8..]), extentSize);
        ReadOnlySpan<byte> bitmap = s[HeaderSize..];
        for (int i = 0; i < bitmapBytes; i += 8)
        {
            entry.Valid[i / 8] = BinaryPrimitives.ReadUInt64LittleEndian(bitmap[i..]);
        }
        return entry;
    }
}
