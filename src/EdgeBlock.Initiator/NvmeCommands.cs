using System.Buffers.Binary;
using EdgeBlock.Nvme;

namespace EdgeBlock.Initiator;

/// <summary>
/// Builds the SQEs the host sends (CID, PSDT and SGL1 are the queue's job). Each writes a whole
/// 64-byte entry into <c>sqe</c>; field names follow the spec.
/// </summary>
public static class NvmeCommands
{
    /// <summary>NSID that addresses every namespace (Flush) or none in particular (controller log pages).</summary>
    public const uint AllNamespaces = 0xFFFFFFFF;
    /// <summary>Deallocate range entries are 16 bytes: context attributes, length in blocks, SLBA.</summary>
    public const int DsmRangeSize = 16;
    private const uint FuaBit = 1u << 30, DeacBit = 1u << 25, DsmAttributeDeallocate = 1u << 2;

    // ---- fabrics ------------------------------------------------------------------

    /// <param name="sqSize">Entries in the queue (Connect sends SQSIZE, 0's based).</param>
    /// <param name="katoMs">Keep alive timeout; only meaningful on the admin queue.</param>
    public static void Connect(Span<byte> sqe, ushort qid, int sqSize, uint katoMs, bool disableSqFlowControl = false)
    {
        var w = Fabrics(sqe, FabricsCommandType.Connect);
        w.Cdw10 = (uint)qid << 16; // RECFMT 0
        w.Cdw11 = (uint)(sqSize - 1) & 0xFFFF | (disableSqFlowControl ? (uint)Nvme.Connect.CattrDisableSqFlowControl << 16 : 0);
        w.Cdw12 = katoMs;
    }

    /// <param name="wide">ATTRIB size: true for 8-byte properties (CAP), false for 4-byte ones.</param>
    public static void PropertyGet(Span<byte> sqe, uint offset, bool wide)
    {
        var w = Fabrics(sqe, FabricsCommandType.PropertyGet);
        w.Cdw10 = wide ? 1u : 0u;
        w.Cdw11 = offset;
    }

    public static void PropertySet(Span<byte> sqe, uint offset, ulong value, bool wide = false)
    {
        var w = Fabrics(sqe, FabricsCommandType.PropertySet);
        w.Cdw10 = wide ? 1u : 0u;
        w.Cdw11 = offset;
        w.Cdw12 = (uint)value;
        w.Cdw13 = (uint)(value >> 32);
    }

    /// <summary>Authentication Send of a DH-HMAC-CHAP message of <paramref name="length"/> bytes (TL).</summary>
    public static void AuthenticationSend(Span<byte> sqe, int length)
    {
        var w = Fabrics(sqe, FabricsCommandType.AuthenticationSend);
        w.Cdw10 = Nvme.Auth.AuthCommand.DhchapCdw10;
        w.Cdw11 = (uint)length;
    }

    /// <summary>Authentication Receive into a buffer of <paramref name="length"/> bytes (AL).</summary>
    public static void AuthenticationReceive(Span<byte> sqe, int length)
    {
        var w = Fabrics(sqe, FabricsCommandType.AuthenticationReceive);
        w.Cdw10 = Nvme.Auth.AuthCommand.DhchapCdw10;
        w.Cdw11 = (uint)length;
    }

    private static SubmissionQueueEntryWriter Fabrics(Span<byte> sqe, FabricsCommandType type) =>
        new(sqe) { Opcode = (byte)AdminOpcode.FabricsCommand, FabricsType = type };

    // ---- admin ----------------------------------------------------------------------

    public static void Identify(Span<byte> sqe, IdentifyCns cns, uint nsid = 0) =>
        _ = new SubmissionQueueEntryWriter(sqe) { Opcode = (byte)AdminOpcode.Identify, Nsid = nsid, Cdw10 = (uint)cns };

    /// <param name="lengthBytes">A multiple of 4 (NUMD is a 0's based dword count).</param>
    /// <param name="retainAsyncEvent">RAE: reading the log does not clear the event that pointed to it.</param>
    public static void GetLogPage(Span<byte> sqe, LogPageId lid, int lengthBytes, ulong offset = 0, bool retainAsyncEvent = false, uint nsid = AllNamespaces, byte lsp = 0)
    {
        if (lengthBytes <= 0 || lengthBytes % 4 != 0) throw new ArgumentOutOfRangeException(nameof(lengthBytes), lengthBytes, "log page reads are whole dwords");
        uint numd = (uint)(lengthBytes / 4 - 1);
        _ = new SubmissionQueueEntryWriter(sqe)
        {
            Opcode = (byte)AdminOpcode.GetLogPage,
            Nsid = nsid,
            Cdw10 = (uint)lid | (uint)(lsp & 0x7F) << 8 | (retainAsyncEvent ? 1u << 15 : 0) | (numd & 0xFFFF) << 16,
            Cdw11 = numd >> 16,
            Cdw12 = (uint)offset,
            Cdw13 = (uint)(offset >> 32),
        };
    }

    /// <param name="select">SEL: 0 current, 1 default, 2 saved, 3 supported capabilities.</param>
    public static void GetFeatures(Span<byte> sqe, FeatureId fid, int select = 0, uint nsid = 0) =>
        _ = new SubmissionQueueEntryWriter(sqe) { Opcode = (byte)AdminOpcode.GetFeatures, Nsid = nsid, Cdw10 = (uint)fid | (uint)(select & 7) << 8 };

    public static void SetFeatures(Span<byte> sqe, FeatureId fid, uint cdw11, bool save = false, uint nsid = 0) =>
        _ = new SubmissionQueueEntryWriter(sqe) { Opcode = (byte)AdminOpcode.SetFeatures, Nsid = nsid, Cdw10 = (uint)fid | (save ? 1u << 31 : 0), Cdw11 = cdw11 };

    public static void KeepAlive(Span<byte> sqe) => _ = new SubmissionQueueEntryWriter(sqe) { Opcode = (byte)AdminOpcode.KeepAlive };

    public static void AsyncEventRequest(Span<byte> sqe) => _ = new SubmissionQueueEntryWriter(sqe) { Opcode = (byte)AdminOpcode.AsyncEventRequest };

    // ---- NVM ---------------------------------------------------------------------------

    public static void Read(Span<byte> sqe, uint nsid, ulong slba, int blocks) => BlockCommand(sqe, NvmOpcode.Read, nsid, slba, blocks, 0);

    public static void Write(Span<byte> sqe, uint nsid, ulong slba, int blocks, bool fua = false) =>
        BlockCommand(sqe, NvmOpcode.Write, nsid, slba, blocks, fua ? FuaBit : 0);

    public static void Compare(Span<byte> sqe, uint nsid, ulong slba, int blocks) => BlockCommand(sqe, NvmOpcode.Compare, nsid, slba, blocks, 0);

    /// <param name="deallocate">DEAC: the blocks may be deallocated rather than written.</param>
    public static void WriteZeroes(Span<byte> sqe, uint nsid, ulong slba, int blocks, bool deallocate = false, bool fua = false) =>
        BlockCommand(sqe, NvmOpcode.WriteZeroes, nsid, slba, blocks, (deallocate ? DeacBit : 0) | (fua ? FuaBit : 0));

    public static void Flush(Span<byte> sqe, uint nsid) => _ = new SubmissionQueueEntryWriter(sqe) { Opcode = (byte)NvmOpcode.Flush, Nsid = nsid };

    /// <summary>Dataset Management with AD (deallocate); the ranges travel as data (see <see cref="WriteDsmRange"/>).</summary>
    public static void Deallocate(Span<byte> sqe, uint nsid, int ranges)
    {
        if (ranges is < 1 or > 256) throw new ArgumentOutOfRangeException(nameof(ranges), ranges, "DSM carries 1..256 ranges");
        _ = new SubmissionQueueEntryWriter(sqe) { Opcode = (byte)NvmOpcode.DatasetManagement, Nsid = nsid, Cdw10 = (uint)(ranges - 1), Cdw11 = DsmAttributeDeallocate };
    }

    public static void WriteDsmRange(Span<byte> range, ulong slba, uint blocks, uint contextAttributes = 0)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(range, contextAttributes);
        BinaryPrimitives.WriteUInt32LittleEndian(range[4..], blocks);
        BinaryPrimitives.WriteUInt64LittleEndian(range[8..], slba);
    }

    private static void BlockCommand(Span<byte> sqe, NvmOpcode opcode, uint nsid, ulong slba, int blocks, uint cdw12Flags)
    {
        if (blocks is < 1 or > 0x10000) throw new ArgumentOutOfRangeException(nameof(blocks), blocks, "NLB covers 1..65536 blocks");
        _ = new SubmissionQueueEntryWriter(sqe) { Opcode = (byte)opcode, Nsid = nsid, Slba = slba, Cdw12 = (uint)(blocks - 1) | cdw12Flags };
    }
}
