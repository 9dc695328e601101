namespace EdgeBlock.Daemon.Tests;

public class NamespaceIdentityTests
{
    [Fact]
    public void For_SameInputs_SameUuid()
    {
        Assert.Equal(NamespaceIdentity.For("nqn.2026-11.io.edgeblock:default", 1, "file:/a"),
                     NamespaceIdentity.For("nqn.2026-11.io.edgeblock:default", 1, "file:/a"));
    }

    [Fact]
    public void For_DifferentNsidOrBackend_DifferentUuid()
    {
        var a = NamespaceIdentity.For("nqn.2026-11.io.edgeblock:default", 1, "file:/a");
        Assert.NotEqual(a, NamespaceIdentity.For("nqn.2026-11.io.edgeblock:default", 2, "file:/a"));
        Assert.NotEqual(a, NamespaceIdentity.For("nqn.2026-11.io.edgeblock:default", 1, "file:/b"));
    }

    [Fact]
    public void For_SetsVersion8AndRfcVariant()
    {
        var bytes = NamespaceIdentity.For("nqn.2026-11.io.edgeblock:default", 1, "null").ToByteArray(bigEndian: true);
        Assert.Equal(0x80, bytes[6] & 0xF0);
        Assert.Equal(0x80, bytes[8] & 0xC0);
    }
}
