using EdgeBlock.Nvme;

namespace EdgeBlock.Nvme.Tests;

public class FabricsTests
{
    [Fact]
    public void ConnectData_RoundTrips()
    {
        var data = new byte[1024];
        var hostId = Guid.NewGuid();
        Connect.WriteData(data, hostId, Connect.DynamicCntlid, "nqn.2026-11.io.edgeblock:default", "nqn.2014-08.org.nvmexpress:uuid:x");
        Assert.Equal(hostId, Connect.HostId(data));
        Assert.Equal(0xFFFF, Connect.Cntlid(data));
        Assert.Equal("nqn.2026-11.io.edgeblock:default", Connect.SubsysNqn(data));
        Assert.Equal("nqn.2014-08.org.nvmexpress:uuid:x", Connect.HostNqn(data));
    }

    [Fact]
    public void WriteNqn_TooLong_Throws()
    {
        Assert.Throws<ArgumentException>(() => Connect.WriteNqn(new byte[256], "nqn.2026-11.io.x:" + new string('a', 260)));
    }

    [Fact]
    public void Cap_EncodesMqesCqrTimeoutAndNvmCommandSet()
    {
        ulong cap = ControllerProperties.BuildCap(1024, 15);
        Assert.Equal(1024, ControllerProperties.MaxQueueEntries(cap));
        Assert.Equal(1UL, (cap >> 16) & 1);
        Assert.Equal(15UL, (cap >> 24) & 0xFF);
        Assert.Equal(1UL, (cap >> 37) & 1);
    }

    [Theory]
    [InlineData("nqn.2026-11.io.edgeblock:default", true)]
    [InlineData("nqn.2014-08.org.nvmexpress:uuid:0b8e1a2c-1b7d-4c5e-9a10-2f3c4d5e6f70", true)]
    [InlineData("nqn.2014-08.org.nvmexpress.discovery", true)]
    [InlineData("iqn.2026-11.io.edgeblock:x", false)]
    [InlineData("nqn.2026-13.io.edgeblock:x", false)]
    [InlineData("nqn.26-11.io.edgeblock", false)]
    [InlineData("", false)]
    [InlineData("nqn.2026-11.io.edgeblock:a\0b", false)]   // NUL
    [InlineData("nqn.2026-11.io.edgeblock:a\nb", false)]   // a newline would forge a log line
    [InlineData("nqn.2026-11.io.edgeblock:\u001b[31m", false)] // ESC: terminal escape codes
    [InlineData("nqn.2026-11.io.edgeblock:a/b", false)]    // could not be addressed in a URL or configfs
    [InlineData("nqn.2026-11.io.edgeblock:vm-1_a.b", true)]
    public void Nqn_Validation(string nqn, bool valid)
    {
        Assert.Equal(valid, Nqn.IsValid(nqn, out string reason));
        Assert.Equal(valid, reason.Length == 0);
    }

    [Fact]
    public void Nqn_Over223Bytes_IsInvalid()
    {
        Assert.False(Nqn.IsValid("nqn.2026-11.io.edgeblock:" + new string('a', 200), out string reason));
        Assert.Contains("223", reason);
    }
}
