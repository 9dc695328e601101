using System.Text;
using EdgeBlock.Nvme.Tcp;

namespace EdgeBlock.Nvme.Tests;

public class TcpPduTests
{
    [Fact]
    public void Crc32C_CheckValue_Matches()
    {
        Assert.Equal(0xE3069283u, Crc32C.Compute(Encoding.ASCII.GetBytes("123456789")));
    }

    [Fact]
    public void Crc32C_IsWrittenLittleEndian()
    {
        var digest = new byte[4];
        Crc32C.Write(digest, Encoding.ASCII.GetBytes("123456789"));
        Assert.Equal(new byte[] { 0x83, 0x92, 0x06, 0xE3 }, digest);
        Assert.True(Crc32C.Verify(Encoding.ASCII.GetBytes("123456789"), digest));
    }

    [Fact]
    public void IcResp_Layout()
    {
        var pdu = new byte[128];
        InitializeConnection.Write(pdu, PduType.ICResp, pda: 0, digest: 3, dword3: 65536);
        var h = PduHeader.Read(pdu);
        Assert.Equal(PduType.ICResp, h.Type);
        Assert.Equal(128, h.Hlen);
        Assert.Equal(128u, h.Plen);
        Assert.Equal(0, InitializeConnection.Pfv(pdu));
        Assert.Equal(3, InitializeConnection.Digest(pdu));
        Assert.Equal(65536u, InitializeConnection.Dword3(pdu));
    }

    [Fact]
    public void TermReq_CarriesFesFeiAndOffendingHeader()
    {
        var offending = Enumerable.Range(0, 200).Select(i => (byte)i).ToArray();
        var pdu = new byte[24 + 128];
        int plen = TermReq.Write(pdu, PduType.C2HTermReq, TermReqFes.InvalidPduHeaderField, 2, offending);
        Assert.Equal(24 + 128, plen); // at most 128 bytes of the offending PDU
        Assert.Equal(PduType.C2HTermReq, PduHeader.Read(pdu).Type);
        Assert.Equal(TermReqFes.InvalidPduHeaderField, TermReq.Fes(pdu));
        Assert.Equal(2u, TermReq.Fei(pdu)); // FEI at byte 10
        Assert.Equal(offending[..128], pdu[24..]);
    }

    [Theory]
    [InlineData(24, false, 0, 24)]
    [InlineData(24, true, 0, 28)]
    [InlineData(24, true, 7, 32)]   // 32-byte alignment
    [InlineData(72, false, 3, 80)]  // 16-byte alignment
    public void DataOffset_AlignsToPeerPda(int hlen, bool hdgst, int pda, int expected)
    {
        Assert.Equal(expected, PduHeader.DataOffset(hlen, hdgst, pda));
    }

    [Fact]
    public void ExpectedHlen_UnknownType_IsNegative()
    {
        Assert.Equal(-1, PduHeader.ExpectedHlen((PduType)0x08));
        Assert.Equal(72, PduHeader.ExpectedHlen(PduType.CapsuleCmd));
    }
}
