using System.Buffers.Binary;
using System.Text;

namespace EdgeBlock.Nvme;

/// <summary>Get Log Page command fields.</summary>
public static class GetLogPage
{
    public static LogPageId Lid(in SubmissionQueueEntry sqe) => (LogPageId)(sqe.Cdw10 & 0xFF);
    public static int Lsp(in SubmissionQueueEntry sqe) => (int)(sqe.Cdw10 >> 8) & 0x7F;
    /// <summary>Retain Asynchronous Event: when set, reading the log does not clear the event.</summary>
    public static bool Rae(in SubmissionQueueEntry sqe) => (sqe.Cdw10 & (1u << 15)) != 0;
    /// <summary>Number of bytes requested (NUMD is a 0's based dword count split over CDW10/CDW11).</summary>
    public static long Length(in SubmissionQueueEntry sqe) => (((long)(sqe.Cdw11 & 0xFFFF) << 16 | (sqe.Cdw10 >> 16)) + 1) * 4;
    public static ulong Offset(in SubmissionQueueEntry sqe) => sqe.Cdw12 | (ulong)sqe.Cdw13 << 32;
}

/// <summary>SMART / Health Information log (02h), 512 bytes.</summary>
public static class SmartLog
{
    public const int Size = 512;

    /// <param name="temperatureKelvin">composite temperature.</param>
    /// <param name="dataUnitsRead">in thousands of 512-byte units, as the spec counts.</param>
    public static void Write(Span<byte> d, ushort temperatureKelvin, byte availableSpare, UInt128 dataUnitsRead, UInt128 dataUnitsWritten,
        UInt128 hostReadCommands, UInt128 hostWriteCommands, UInt128 powerOnHours, UInt128 mediaErrors, UInt128 errorLogEntries)
    {
        d = d[..Size];
        d.Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(d[1..], temperatureKelvin);
        d[3] = availableSpare;
        d[4] = 10; // available spare threshold
        BinaryPrimitives.WriteUInt128LittleEndian(d[32..], dataUnitsRead);
        BinaryPrimitives.WriteUInt128LittleEndian(d[48..], dataUnitsWritten);
        BinaryPrimitives.WriteUInt128LittleEndian(d[64..], hostReadCommands);
        BinaryPrimitives.WriteUInt128LittleEndian(d[80..], hostWriteCommands);
        BinaryPrimitives.WriteUInt128LittleEndian(d[128..], powerOnHours);
        BinaryPrimitives.WriteUInt128LittleEndian(d[160..], mediaErrors);
        BinaryPrimitives.WriteUInt128LittleEndian(d[176..], errorLogEntries);
    }
}

/// <summary>Error Information log entry (01h), 64 bytes each.</summary>
public static class ErrorLogEntry
{
    public const int Size = 64;

    public static void Write(Span<byte> d, ulong errorCount, ushort sqId, ushort commandId, NvmeStatus status, ushort parameterErrorLocation, ulong lba, uint nsid)
    {
        d = d[..Size];
        d.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(d, errorCount);
        BinaryPrimitives.WriteUInt16LittleEndian(d[8..], sqId);
        BinaryPrimitives.WriteUInt16LittleEndian(d[10..], commandId);
        BinaryPrimitives.WriteUInt16LittleEndian(d[12..], status.ToField());
        BinaryPrimitives.WriteUInt16LittleEndian(d[14..], parameterErrorLocation);
        BinaryPrimitives.WriteUInt64LittleEndian(d[16..], lba);
        BinaryPrimitives.WriteUInt32LittleEndian(d[24..], nsid);
    }
}

/// <summary>Firmware Slot Information log (03h), 512 bytes.</summary>
public static class FirmwareSlotLog
{
    public const int Size = 512;

    public static void Write(Span<byte> d, string revision)
    {
        d = d[..Size];
        d.Clear();
        d[0] = 1; // AFI: slot 1 active
        IdentifyControllerData.WriteAscii(d.Slice(8, 8), revision);
    }
}

/// <summary>Asynchronous event completion DW0 (event type, information, log page).</summary>
public static class AsyncEvent
{
    public const byte TypeNotice = 2;
    public const byte InfoNamespaceAttributeChanged = 0x00;
    public const byte InfoDiscoveryLogChanged = 0xF0;
    /// <summary>OAES / Async Event Configuration bit for namespace attribute notices.</summary>
    public const uint NamespaceAttributeNotices = 1 << 8;
    /// <summary>Async Event Configuration bit for discovery log page change notices.</summary>
    public const uint DiscoveryLogChangeNotices = 1u << 31;

    public static uint Result(byte type, byte info, LogPageId logPage) => type | (uint)info << 8 | (uint)logPage << 16;
}

/// <summary>The discovery log page (70h): a 1024-byte header and a 1024-byte entry per record.</summary>
public static class DiscoveryLog
{
    public const int HeaderSize = 1024, EntrySize = 1024;
    public const byte TrtypeTcp = 3, AdrfamIpv4 = 1, AdrfamIpv6 = 2;
    public const byte SubtypeReferral = 1, SubtypeNvm = 2, SubtypeCurrentDiscovery = 3;

    public static void WriteHeader(Span<byte> d, ulong genctr, ulong numrec)
    {
        d[..HeaderSize].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(d, genctr);
        BinaryPrimitives.WriteUInt64LittleEndian(d[8..], numrec);
        BinaryPrimitives.WriteUInt16LittleEndian(d[16..], 0); // RECFMT
    }

    public static void WriteEntry(Span<byte> d, byte subtype, ushort portId, string trsvcid, string traddr, byte adrfam, string subnqn, ushort asqsz)
    {
        d = d[..EntrySize];
        d.Clear();
        d[0] = TrtypeTcp;
        d[1] = adrfam;
        d[2] = subtype;
        d[3] = 0x02; // TREQ: secure channel not required
        BinaryPrimitives.WriteUInt16LittleEndian(d[4..], portId);
        BinaryPrimitives.WriteUInt16LittleEndian(d[6..], Connect.DynamicCntlid);
        BinaryPrimitives.WriteUInt16LittleEndian(d[8..], asqsz);
        WriteSpacePadded(d.Slice(32, 32), trsvcid);
        Connect.WriteNqn(d.Slice(256, 256), subnqn);
        WriteSpacePadded(d.Slice(512, 256), traddr);
        d[768] = 0; // TSAS.SECTYPE: none
    }

    /// <summary>TRSVCID and TRADDR are ASCII strings padded with spaces.</summary>
    private static void WriteSpacePadded(Span<byte> field, string value)
    {
        field.Fill((byte)' ');
        Encoding.ASCII.GetBytes(value, field);
    }

    public static ulong Genctr(ReadOnlySpan<byte> page) => BinaryPrimitives.ReadUInt64LittleEndian(page);
    public static ulong Numrec(ReadOnlySpan<byte> page) => BinaryPrimitives.ReadUInt64LittleEndian(page[8..]);
    public static string EntrySubNqn(ReadOnlySpan<byte> entry) => Connect.ReadNqn(entry.Slice(256, 256));
    public static byte EntrySubtype(ReadOnlySpan<byte> entry) => entry[2];
}

/// <summary>Commands Supported and Effects log (LID 05h): one 32-bit entry per admin opcode, then one per I/O opcode.</summary>
public static class CommandEffectsLog
{
    public const int Size = 4096;
    private const int IoCommandsOffset = 1024;

    public static void WriteAdmin(Span<byte> page, byte opcode, CommandEffects effects) =>
        BinaryPrimitives.WriteUInt32LittleEndian(page[(4 * opcode)..], (uint)effects);

    public static void WriteIo(Span<byte> page, byte opcode, CommandEffects effects) =>
        BinaryPrimitives.WriteUInt32LittleEndian(page[(IoCommandsOffset + 4 * opcode)..], (uint)effects);

    public static CommandEffects ReadAdmin(ReadOnlySpan<byte> page, byte opcode) =>
        (CommandEffects)BinaryPrimitives.ReadUInt32LittleEndian(page[(4 * opcode)..]);

    public static CommandEffects ReadIo(ReadOnlySpan<byte> page, byte opcode) =>
        (CommandEffects)BinaryPrimitives.ReadUInt32LittleEndian(page[(IoCommandsOffset + 4 * opcode)..]);
}

/// <summary>The bits of a Commands Supported and Effects entry.</summary>
[Flags]
public enum CommandEffects : uint
{
    None = 0,
    /// <summary>CSUPP: the controller supports the command.</summary>
    Supported = 1 << 0,
    /// <summary>LBCC: the command may change logical block content.</summary>
    LogicalBlockContentChange = 1 << 1,
    /// <summary>NCC: the command may change namespace capabilities.</summary>
    NamespaceCapabilityChange = 1 << 2,
    /// <summary>NIC: the command may change the number of namespaces or their capabilities.</summary>
    NamespaceInventoryChange = 1 << 3,
    /// <summary>CCC: the command may change controller capabilities.</summary>
    ControllerCapabilityChange = 1 << 4,
}
