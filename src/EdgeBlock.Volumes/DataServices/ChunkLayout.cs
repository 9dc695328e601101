namespace EdgeBlock.Volumes;

/// <summary>
/// How volumes with data services store their data: in chunks of <see cref="ChunkSize"/> bytes
/// of the volume, each written redirect-on-write to a new run of 4 KiB sectors, compressed
/// (when that saves at least one sector) and checksummed. A chunk is the unit of checksum and
/// compression, so a write smaller than a chunk reads, merges and rewrites the whole chunk.
/// 16 KiB (ZFS's default volblocksize): a 4 KiB random write costs 4× in bytes moved and a
/// 4 KiB read of a checksummed chunk reads 16 KiB, while 64 KiB would cost 16× — and guests'
/// file systems write in 4 KiB blocks. Smaller chunks compress worse (lz4 needs context) and
/// cost map memory (16 bytes per chunk in RAM: 1 GiB per TiB written at 16 KiB).
/// </summary>
internal static class ChunkLayout
{
    public const int ChunkSize = 16 * 1024;
    public const int SectorSize = PoolLayout.BlockSize;
    public const int SectorsPerChunk = ChunkSize / SectorSize;
    public const int BlocksPerChunk = ChunkSize / PoolLayout.BlockSize;

    /// <summary>Sectors needed to store length bytes.</summary>
    public static int SectorsFor(int length) => (length + SectorSize - 1) / SectorSize;
}

/// <summary>What a stored chunk's bytes are.</summary>
internal enum ChunkCodecKind : byte
{
    Raw = 0,
    Lz4 = 1,
    Zstd = 2,
}

/// <summary>
/// Where a chunk is stored, packed into 64 bits so a map slot is two words.
/// <code>
/// bit  63      mapped (0: the chunk reads as zeroes)
/// bits 61..62  codec (<see cref="ChunkCodecKind"/>)
/// bits 44..60  stored length in bytes (up to 128 KiB)
/// bits 36..43  drive index
/// bits  0..35  first sector on the drive, counted from the data area (256 TiB per drive)
/// </code>
/// </summary>
internal readonly record struct ChunkLocation(ulong Packed)
{
    private const int DriveShift = 36, LengthShift = 44, CodecShift = 61;
    public const long MaxSector = (1L << DriveShift) - 1;
    public const int MaxDrive = 255;

    public static ChunkLocation Create(int drive, long sector, int length, ChunkCodecKind codec) =>
        new((1UL << 63) | ((ulong)codec << CodecShift) | ((ulong)length << LengthShift) | ((ulong)drive << DriveShift) | (ulong)sector);

    public bool IsMapped => (Packed >> 63) != 0;
    public ChunkCodecKind Codec => (ChunkCodecKind)((Packed >> CodecShift) & 3);
    public int Length => (int)((Packed >> LengthShift) & 0x1FFFF);
    public int Drive => (int)((Packed >> DriveShift) & 0xFF);
    public long Sector => (long)(Packed & MaxSector);
    public int Sectors => ChunkLayout.SectorsFor(Length);

    /// <summary>Drive and first sector only: what the space allocator and the refcounts know a chunk by.</summary>
    public ulong Place => Packed & ((1UL << LengthShift) - 1);

    public override string ToString() => IsMapped ? $"drive {Drive} sector {Sector} ({Length} bytes, {Codec})" : "unmapped";
}
