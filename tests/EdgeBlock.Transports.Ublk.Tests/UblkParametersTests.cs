using EdgeBlock.Storage;

namespace EdgeBlock.Transports.Ublk.Tests;

public class UblkParametersTests
{
    [Fact]
    public async Task Parameters_DiscardingDevice_AnnouncesDiscardAndWriteZeroes()
    {
        await using var device = new MemoryBlockDevice(64L << 20, 4096);
        var p = UblkDevice.Parameters(device, new UblkOptions());

        Assert.Equal(UblkAbi.ParamTypeBasic | UblkAbi.ParamTypeDiscard, p.Types);
        Assert.Equal(12, p.Basic.LogicalBsShift);
        Assert.Equal((ulong)(64L << 20) / 512, p.Basic.DevSectors);
        Assert.Equal(256u, p.Basic.MaxSectors);
        Assert.Equal(UblkAbi.AttrVolatileCache | UblkAbi.AttrFua, p.Basic.Attrs);
        Assert.Equal(4096u, p.Discard.DiscardGranularity);
        Assert.Equal(1, p.Discard.MaxDiscardSegments);
        Assert.True(p.Discard.MaxWriteZeroesSectors > 0);
    }

    [Fact]
    public async Task Parameters_ReadOnly_SetsTheAttributeAndNoDiscard()
    {
        await using var device = new MemoryBlockDevice(1L << 20, 512);
        var p = UblkDevice.Parameters(device, new UblkOptions { ReadOnly = true });

        Assert.Equal(UblkAbi.ParamTypeBasic, p.Types);
        Assert.NotEqual(0u, p.Basic.Attrs & UblkAbi.AttrReadOnly);
        Assert.Equal(9, p.Basic.LogicalBsShift);
        Assert.Equal(12, p.Basic.PhysicalBsShift);
    }
}
