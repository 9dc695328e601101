using System.Buffers.Binary;
using System.Text;

namespace EdgeBlock.Nvme;

/// <summary>Identify Controller data structure (CNS 01h), 4096 bytes. Offsets from the base spec.</summary>
public sealed class IdentifyControllerData
{
    public const int Size = 4096;

    public ushort Vid { get; init; }
    public ushort Ssvid { get; init; }
    public string SerialNumber { get; init; } = "";
    public string ModelNumber { get; init; } = "";
    public string FirmwareRevision { get; init; } = "";
    public byte Cmic { get; init; }
    /// <summary>Maximum data transfer size as a power of two of 4 KiB pages (0 = no limit).</summary>
    public byte Mdts { get; init; }
    public ushort Cntlid { get; init; }
    public uint Version { get; init; }
    public uint Oaes { get; init; }
    public uint Ctratt { get; init; }
    /// <summary>1 = I/O controller, 2 = discovery controller.</summary>
    public byte ControllerType { get; init; }
    public ushort Oacs { get; init; }
    public byte Acl { get; init; }
    public byte Aerl { get; init; }
    public byte Frmw { get; init; }
    public byte Lpa { get; init; }
    public byte Elpe { get; init; }
    /// <summary>Keep alive granularity in 100 ms units.</summary>
    public ushort Kas { get; init; }
    public ushort Maxcmd { get; init; }
    public uint NamespaceCount { get; init; }
    public ushort Oncs { get; init; }
    public byte Vwc { get; init; }
    public uint Sgls { get; init; }
    public string SubsystemNqn { get; init; } = "";
    /// <summary>I/O queue command capsule supported size in 16-byte units.</summary>
    public uint Ioccsz { get; init; }
    public uint Iorcsz { get; init; }
    public byte Msdbd { get; init; }
    public ushort Wctemp { get; init; }
    public ushort Cctemp { get; init; }

    public void Write(Span<byte> d)
    {
        d = d[..Size];
        d.Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(d[0..], Vid);
        BinaryPrimitives.WriteUInt16LittleEndian(d[2..], Ssvid);
        WriteAscii(d.Slice(4, 20), SerialNumber);
        WriteAscii(d.Slice(24, 40), ModelNumber);
        WriteAscii(d.Slice(64, 8), FirmwareRevision);
        d[72] = 6; // RAB: recommended arbitration burst
        d[76] = Cmic;
        d[77] = Mdts;
        BinaryPrimitives.WriteUInt16LittleEndian(d[78..], Cntlid);
        BinaryPrimitives.WriteUInt32LittleEndian(d[80..], Version);
        BinaryPrimitives.WriteUInt32LittleEndian(d[92..], Oaes);
        BinaryPrimitives.WriteUInt32LittleEndian(d[96..], Ctratt);
        d[111] = ControllerType;
        BinaryPrimitives.WriteUInt16LittleEndian(d[256..], Oacs);
        d[258] = Acl;
        d[259] = Aerl;
        d[260] = Frmw;
        d[261] = Lpa;
        d[262] = Elpe;
        BinaryPrimitives.WriteUInt16LittleEndian(d[266..], Wctemp);
        BinaryPrimitives.WriteUInt16LittleEndian(d[268..], Cctemp);
        BinaryPrimitives.WriteUInt16LittleEndian(d[320..], Kas);
        d[512] = 0x66; // SQES: required and maximum 64 bytes
        d[513] = 0x44; // CQES: required and maximum 16 bytes
        BinaryPrimitives.WriteUInt16LittleEndian(d[514..], Maxcmd);
        BinaryPrimitives.WriteUInt32LittleEndian(d[516..], NamespaceCount);
        BinaryPrimitives.WriteUInt16LittleEndian(d[520..], Oncs);
        d[525] = Vwc;
        BinaryPrimitives.WriteUInt32LittleEndian(d[536..], Sgls);
        Connect.WriteNqn(d.Slice(768, 256), SubsystemNqn);
        BinaryPrimitives.WriteUInt32LittleEndian(d[1792..], Ioccsz);
        BinaryPrimitives.WriteUInt32LittleEndian(d[1796..], Iorcsz);
        d[1800] = 0; d[1801] = 0; // ICDOFF: in-capsule data starts right after the SQE
        d[1802] = 0; // FCATT: dynamic controller model
        d[1803] = Msdbd;
        // Power state 0 descriptor: max power 0 is allowed; leave zeroes (NPSS = 0: one power state).
    }

    /// <summary>ASCII fields are space padded, not NUL terminated.</summary>
    public static void WriteAscii(Span<byte> field, string value)
    {
        field.Fill((byte)' ');
        int n = Math.Min(value.Length, field.Length);
        Encoding.ASCII.GetBytes(value.AsSpan(0, n), field);
    }
}

/// <summary>ONCS (Identify Controller bytes 521:520): optional NVM commands the controller supports.</summary>
[Flags]
public enum OptionalNvmCommands : ushort
{
    None = 0,
    Compare = 1 << 0,
    WriteUncorrectable = 1 << 1,
    DatasetManagement = 1 << 2,
    WriteZeroes = 1 << 3,
}
