using System.Buffers.Binary;
using System.Text;
using EdgeBlock.Nvme;

namespace EdgeBlock.Nvme.Tests;

public class IdentifyTests
{
    [Fact]
    public void IdentifyController_FieldsAtSpecOffsets()
    {
        var page = new byte[4096];
        new IdentifyControllerData
        {
            SerialNumber = "abc", ModelNumber = "EdgeBlock", FirmwareRevision = "0.1", Mdts = 5, Cntlid = 0x21,
            Version = ControllerProperties.Version14, ControllerType = 1, Aerl = 3, Kas = 10, NamespaceCount = 1024,
            Oncs = 0xD, Vwc = 7, Sgls = 0x100001, SubsystemNqn = "nqn.2026-11.io.edgeblock:default", Ioccsz = 1028, Iorcsz = 1, Msdbd = 1,
        }.Write(page);
        Assert.Equal("abc                 ", Encoding.ASCII.GetString(page, 4, 20));
        Assert.Equal(5, page[77]);
        Assert.Equal(0x21, BinaryPrimitives.ReadUInt16LittleEndian(page.AsSpan(78)));
        Assert.Equal(0x10400u, BinaryPrimitives.ReadUInt32LittleEndian(page.AsSpan(80)));
        Assert.Equal(1, page[111]);
        Assert.Equal(3, page[259]);
        Assert.Equal(10, BinaryPrimitives.ReadUInt16LittleEndian(page.AsSpan(320)));
        Assert.Equal(0x66, page[512]);
        Assert.Equal(0x44, page[513]);
        Assert.Equal(1024u, BinaryPrimitives.ReadUInt32LittleEndian(page.AsSpan(516)));
        Assert.Equal(0xD, BinaryPrimitives.ReadUInt16LittleEndian(page.AsSpan(520)));
        Assert.Equal(7, page[525]);
        Assert.Equal(0x100001u, BinaryPrimitives.ReadUInt32LittleEndian(page.AsSpan(536)));
        Assert.Equal("nqn.2026-11.io.edgeblock:default", Connect.ReadNqn(page.AsSpan(768, 256)));
        Assert.Equal(1028u, BinaryPrimitives.ReadUInt32LittleEndian(page.AsSpan(1792)));
        Assert.Equal(1, page[1803]);
    }

    [Fact]
    public void IdentifyNamespace_SizeFormatAndNguid()
    {
        var page = new byte[4096];
        var nguid = Enumerable.Range(1, 16).Select(i => (byte)i).ToArray();
        IdentifyNamespaceData.Write(page, blockCount: 2048, usedBlocks: 10, blockSize: 512, thin: true, deallocateReadsZeroes: true, nguid, eui64: 0);
        Assert.Equal(2048, IdentifyNamespaceData.Nsze(page));
        Assert.Equal(10, BinaryPrimitives.ReadInt64LittleEndian(page.AsSpan(16)));
        Assert.Equal(1, page[24]);
        Assert.Equal(0x09, page[33]);
        Assert.Equal(nguid, page[104..120]);
        Assert.Equal(9, page[130]); // LBAF0.LBADS = log2(512)
        Assert.Equal(512, IdentifyNamespaceData.BlockSize(page));
    }

    [Fact]
    public void NamespaceDescriptors_ListNguidUuidAndCsi()
    {
        var page = new byte[4096];
        var uuid = Guid.Parse("01020304-0506-0708-090a-0b0c0d0e0f10");
        NamespaceDescriptorList.Write(page, new byte[16], uuid);
        Assert.Equal(NamespaceDescriptorList.TypeNguid, page[0]);
        Assert.Equal(16, page[1]);
        Assert.Equal(NamespaceDescriptorList.TypeUuid, page[20]);
        Assert.Equal(new byte[] { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 }, page[24..40]); // big-endian UUID bytes
        Assert.Equal(NamespaceDescriptorList.TypeCsi, page[40]);
        Assert.Equal(1, page[41]);
    }

    [Fact]
    public void DiscoveryEntry_Layout()
    {
        var page = new byte[2048];
        DiscoveryLog.WriteHeader(page, genctr: 3, numrec: 1);
        DiscoveryLog.WriteEntry(page.AsSpan(1024), DiscoveryLog.SubtypeNvm, 1, "4420", "127.0.0.1", DiscoveryLog.AdrfamIpv4, "nqn.2026-11.io.edgeblock:x", 1024);
        Assert.Equal(3UL, DiscoveryLog.Genctr(page));
        Assert.Equal(1UL, DiscoveryLog.Numrec(page));
        var e = page.AsSpan(1024);
        Assert.Equal(DiscoveryLog.TrtypeTcp, e[0]);
        Assert.Equal(DiscoveryLog.SubtypeNvm, e[2]);
        Assert.Equal(0xFFFF, BinaryPrimitives.ReadUInt16LittleEndian(e[6..]));
        Assert.Equal("4420", Encoding.ASCII.GetString(e.Slice(32, 32)).TrimEnd());
        Assert.Equal("127.0.0.1", Encoding.ASCII.GetString(e.Slice(512, 256)).TrimEnd());
        Assert.Equal("nqn.2026-11.io.edgeblock:x", DiscoveryLog.EntrySubNqn(e));
    }
}
