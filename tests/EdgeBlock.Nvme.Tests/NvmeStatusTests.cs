using EdgeBlock.Nvme;

namespace EdgeBlock.Nvme.Tests;

public class NvmeStatusTests
{
    [Fact]
    public void ToField_PutsScInBits8To1_SctInBits11To9_DnrInBit15()
    {
        // Connect Invalid Host: SCT 1, SC 84h, DNR — the Linux host decodes this as 0x4184 >> 1 = NVME_SC_CONNECT_INVALID_HOST | DNR.
        Assert.Equal(0x8308, NvmeStatus.ConnectInvalidHost.ToField());
        Assert.Equal(0x0100 | 0x8000, NvmeStatus.LbaOutOfRange.ToField());
        Assert.Equal((0x85 << 1) | (2 << 9) | 0x8000, NvmeStatus.CompareFailure.ToField());
        Assert.Equal(0, NvmeStatus.Success.ToField());
    }

    [Theory]
    [InlineData(0x0000)]
    [InlineData(0x8308)]
    [InlineData(0x450A)]
    public void FromField_RoundTripsEveryBitButPhase(ushort field)
    {
        Assert.Equal(field & 0xFFFE, NvmeStatus.FromField(field).ToField());
    }

    [Fact]
    public void IsSuccess_OnlyForGenericZero()
    {
        Assert.True(NvmeStatus.Success.IsSuccess);
        Assert.False(NvmeStatus.InvalidField.IsSuccess);
        Assert.False(new NvmeStatus(StatusCodeType.CommandSpecific, 0).IsSuccess);
    }
}
