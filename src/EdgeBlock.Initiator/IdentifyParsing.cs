using System.Buffers.Binary;
using System.Text;
using EdgeBlock.Nvme;

namespace EdgeBlock.Initiator;

/// <summary>Reads the Identify Controller page (CNS 01h) into the wire layer's <see cref="IdentifyControllerData"/>.</summary>
public static class IdentifyControllerReader
{
    public static IdentifyControllerData Parse(ReadOnlySpan<byte> d)
    {
        if (d.Length < IdentifyControllerData.Size) throw new ArgumentException("Identify Controller data is 4096 bytes", nameof(d));
        return new IdentifyControllerData
        {
            Vid = U16(d, 0),
            Ssvid = U16(d, 2),
            SerialNumber = Ascii(d.Slice(4, 20)),
            ModelNumber = Ascii(d.Slice(24, 40)),
            FirmwareRevision = Ascii(d.Slice(64, 8)),
            Cmic = d[76],
            Mdts = d[77],
            Cntlid = U16(d, 78),
            Version = U32(d, 80),
            Oaes = U32(d, 92),
            Ctratt = U32(d, 96),
            ControllerType = d[111],
            Oacs = U16(d, 256),
            Acl = d[258],
            Aerl = d[259],
            Frmw = d[260],
            Lpa = d[261],
            Elpe = d[262],
            Wctemp = U16(d, 266),
            Cctemp = U16(d, 268),
            Kas = U16(d, 320),
            Maxcmd = U16(d, 514),
            NamespaceCount = U32(d, 516),
            Oncs = U16(d, 520),
            Vwc = d[525],
            Sgls = U32(d, 536),
            SubsystemNqn = Connect.ReadNqn(d.Slice(768, 256)),
            Ioccsz = U32(d, 1792),
            Iorcsz = U32(d, 1796),
            Msdbd = d[1803],
        };
    }

    /// <summary>MDTS in bytes (MDTS is a power of two of the 4 KiB minimum page size; 0 = no limit).</summary>
    public static long MaxTransferBytes(IdentifyControllerData id) => id.Mdts == 0 ? long.MaxValue : 4096L << id.Mdts;

    /// <summary>In-capsule data the I/O queues accept: IOCCSZ (16-byte units) less the 64-byte SQE.</summary>
    public static int InCapsuleDataBytes(IdentifyControllerData id) => (int)Math.Clamp(id.Ioccsz * 16L - SubmissionQueueEntry.Size, 0, int.MaxValue);

    private static ushort U16(ReadOnlySpan<byte> d, int at) => BinaryPrimitives.ReadUInt16LittleEndian(d[at..]);
    private static uint U32(ReadOnlySpan<byte> d, int at) => BinaryPrimitives.ReadUInt32LittleEndian(d[at..]);

    /// <summary>ASCII identify fields are space padded.</summary>
    internal static string Ascii(ReadOnlySpan<byte> field) => Encoding.ASCII.GetString(field).TrimEnd(' ', '\0');
}

/// <summary>The Identify Namespace fields a host needs (CNS 00h, NVM command set).</summary>
public sealed record NamespaceInfo(
    long Nsze, long Ncap, long Nuse, byte Nsfeat, byte Nlbaf, byte Flbas, byte Dlfeat, int BlockSize, int MetadataSize, byte[] Nguid, ulong Eui64)
{
    /// <summary>An inactive NSID returns an all-zero page.</summary>
    public bool IsActive => Nsze != 0;

    /// <summary>DLFEAT bits 2:0 = 001b: deallocated blocks read as zeroes.</summary>
    public bool DeallocatedReadsZeroes => (Dlfeat & 0x7) == 1;

    public static NamespaceInfo Parse(ReadOnlySpan<byte> d)
    {
        if (d.Length < IdentifyNamespaceData.Size) throw new ArgumentException("Identify Namespace data is 4096 bytes", nameof(d));
        byte flbas = d[26];
        int format = flbas & 0xF | (flbas >> 5 & 0x3) << 4;
        var lbaf = d.Slice(128 + 4 * format, 4);
        int lbads = lbaf[2];
        return new NamespaceInfo(
            Nsze: BinaryPrimitives.ReadInt64LittleEndian(d),
            Ncap: BinaryPrimitives.ReadInt64LittleEndian(d[8..]),
            Nuse: BinaryPrimitives.ReadInt64LittleEndian(d[16..]),
            Nsfeat: d[24],
            Nlbaf: d[25],
            Flbas: flbas,
            Dlfeat: d[33],
            BlockSize: lbads is >= 9 and < 31 ? 1 << lbads : 0,
            MetadataSize: BinaryPrimitives.ReadUInt16LittleEndian(lbaf),
            Nguid: d.Slice(104, 16).ToArray(),
            Eui64: BinaryPrimitives.ReadUInt64BigEndian(d[120..]));
    }
}

/// <summary>One record of the discovery log page (70h).</summary>
public sealed record DiscoveryLogEntry(
    byte Trtype, byte Adrfam, byte Subtype, byte Treq, ushort PortId, ushort Cntlid, ushort Asqsz, string Trsvcid, string SubNqn, string Traddr)
{
    public static DiscoveryLogEntry Parse(ReadOnlySpan<byte> e) => new(
        Trtype: e[0],
        Adrfam: e[1],
        Subtype: e[2],
        Treq: e[3],
        PortId: BinaryPrimitives.ReadUInt16LittleEndian(e[4..]),
        Cntlid: BinaryPrimitives.ReadUInt16LittleEndian(e[6..]),
        Asqsz: BinaryPrimitives.ReadUInt16LittleEndian(e[8..]),
        Trsvcid: IdentifyControllerReader.Ascii(e.Slice(32, 32)),
        SubNqn: Connect.ReadNqn(e.Slice(256, 256)),
        Traddr: IdentifyControllerReader.Ascii(e.Slice(512, 256)));
}

/// <summary>The discovery log as read: generation counter and records.</summary>
public sealed record DiscoveryLogPage(ulong Genctr, IReadOnlyList<DiscoveryLogEntry> Entries);
