using EdgeBlock.Cli;

namespace EdgeBlock.Cli.Tests;

/// <summary>serve's own option checks: a bad value is refused before anything starts, naming the option.</summary>
public class ServeOptionsTests
{
    [Theory]
    [InlineData("50us")]
    [InlineData("1ms")]
    [InlineData("0")]
    public void BusyPoll_DurationUpToOneMillisecond_IsAccepted(string value)
    {
        var result = ServeCommand.Create().Parse(["--busy-poll", value]);
        Assert.Empty(result.Errors);
    }

    [Theory]
    [InlineData("2ms", "--busy-poll 2ms: at most 1ms")]
    [InlineData("fast", "--busy-poll: 'fast' is not a duration")]
    public void BusyPoll_TooLongOrNotADuration_IsRefusedNamingTheOption(string value, string message)
    {
        var result = ServeCommand.Create().Parse(["--busy-poll", value]);
        Assert.Contains(result.Errors, e => e.Message.StartsWith(message, StringComparison.Ordinal));
    }
}
