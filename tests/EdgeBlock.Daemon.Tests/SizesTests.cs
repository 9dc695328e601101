namespace EdgeBlock.Daemon.Tests;

public class SizesTests
{
    [Theory]
    [InlineData("512", 512L)]
    [InlineData("64K", 64L << 10)]
    [InlineData("1G", 1L << 30)]
    [InlineData("8GiB", 8L << 30)]
    [InlineData("2t", 2L << 40)]
    [InlineData("100MB", 100L << 20)]
    public void TryParse_AcceptsOperatorForms(string text, long expected)
    {
        Assert.True(Sizes.TryParse(text, out long bytes, out string error), error);
        Assert.Equal(expected, bytes);
    }

    [Theory]
    [InlineData("")]
    [InlineData("G")]
    [InlineData("-1G")]
    [InlineData("1X")]
    [InlineData("1.5G")]
    [InlineData("99999999999P")]
    public void TryParse_RefusesWithMessageNamingTheInput(string text)
    {
        Assert.False(Sizes.TryParse(text, out _, out string error));
        Assert.Contains($"'{text}'", error);
    }

    [Fact]
    public void Format_UsesBinaryUnits()
    {
        Assert.Equal("8 GiB", Sizes.Format(8L << 30));
        Assert.Equal("1.5 MiB", Sizes.Format(3L << 19));
        Assert.Equal("100 B", Sizes.Format(100));
    }
}
