using System.Buffers.Binary;
using EdgeBlock.Nvme;

namespace EdgeBlock.Nvme.Tests;

public class SubmissionQueueEntryTests
{
    [Fact]
    public void Fields_AreReadAtSpecOffsets()
    {
        var b = new byte[64];
        b[0] = 0x02;                                           // opcode: Read
        b[1] = 0x40;                                           // PSDT 01b
        BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(2), 0xBEEF);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(4), 7);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(40), 0x1_0000_0010);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(48), (1u << 30) | 7);
        b[24 + 15] = SglDescriptor.TransportDataBlock;
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(24 + 8), 4096);

        var sqe = new SubmissionQueueEntry(b);
        Assert.Equal(0x02, sqe.Opcode);
        Assert.Equal(1, sqe.Psdt);
        Assert.Equal(0xBEEF, sqe.CommandId);
        Assert.Equal(7u, sqe.Nsid);
        Assert.Equal(0x1_0000_0010UL, sqe.Slba);
        Assert.Equal(8, sqe.BlockCount);
        Assert.True(sqe.Fua);
        Assert.Equal(5, sqe.Sgl1.DescriptorType);
        Assert.Equal(0xA, sqe.Sgl1.SubType);
        Assert.Equal(4096u, sqe.Sgl1.Length);
    }

    [Fact]
    public void Writer_ProducesWhatTheViewReads()
    {
        var b = new byte[64];
        var w = new SubmissionQueueEntryWriter(b) { Opcode = 0x01, CommandId = 9, Nsid = 1, Slba = 100, Cdw12 = 15 };
        w.SetInCapsuleData(8192);
        var sqe = new SubmissionQueueEntry(b);
        Assert.Equal(0x01, sqe.Opcode);
        Assert.Equal(9, sqe.CommandId);
        Assert.Equal(100UL, sqe.Slba);
        Assert.Equal(16, sqe.BlockCount);
        Assert.Equal(SglDescriptor.InCapsuleDataBlock, sqe.Sgl1.Identifier);
        Assert.Equal(8192u, sqe.Sgl1.Length);
    }

    [Fact]
    public void Constructor_ShortBuffer_Throws()
    {
        Assert.Throws<ArgumentException>(() => { _ = new SubmissionQueueEntry(new byte[63]); });
    }
}
