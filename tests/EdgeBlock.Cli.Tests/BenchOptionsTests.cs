namespace EdgeBlock.Cli.Tests;

public sealed class BenchOptionsTests
{
    [Fact]
    public void Defaults_AreFiosUsualRandomReadJob()
    {
        var (o, errors) = BenchCommand.Parse("--nqn", "nqn.2026-11.io.edgeblock:default");

        Assert.Empty(errors);
        Assert.NotNull(o);
        Assert.Equal("127.0.0.1", o.Host);
        Assert.Equal(4420, o.Port);
        Assert.Equal(1u, o.Nsid);
        Assert.Equal(BenchPattern.RandRead, o.Pattern);
        Assert.Equal(4096, o.BlockSize);
        Assert.Equal(32, o.QueueDepth);
        Assert.Equal(1, o.Queues);
        Assert.Equal(TimeSpan.FromSeconds(15), o.Duration);
        Assert.Equal(TimeSpan.Zero, o.Ramp);
        Assert.False(o.Verify || o.Json || o.HeaderDigest || o.DataDigest);
        Assert.Null(o.ServerPid);
        Assert.Null(o.Compressible);
    }

    [Fact]
    public void Compressible_IsARatio_AndNotWithVerify()
    {
        var (o, errors) = BenchCommand.Parse("--rw", "write", "--compressible", "2");
        Assert.Empty(errors);
        Assert.Equal(2, o!.Compressible);

        Assert.Contains(BenchCommand.Parse("--compressible", "0").Errors, e => e.Contains("--compressible 0: a ratio 1..64", StringComparison.Ordinal));
        Assert.Contains(BenchCommand.Parse("--compressible", "2", "--verify").Errors, e => e.Contains("--compressible and --verify", StringComparison.Ordinal));
    }

    [Fact]
    public void RateIops_PacesEachSlotInWholeMilliseconds_MoreThanAThousandPerSlotRefused()
    {
        var (o, errors) = BenchCommand.Parse("--rate-iops", "200", "--qd", "1");
        Assert.Empty(errors);
        Assert.Equal(TimeSpan.FromMilliseconds(5), o!.PacePerSlot);
        Assert.Equal(TimeSpan.FromMilliseconds(40), BenchCommand.Parse("--rate-iops", "1600", "--qd", "32", "--queues", "2").Options!.PacePerSlot);
        Assert.Equal(TimeSpan.Zero, BenchCommand.Parse().Options!.PacePerSlot); // unpaced by default

        Assert.Contains(BenchCommand.Parse("--rate-iops", "5000", "--qd", "2").Errors, e => e.Contains("--rate-iops 5000: at most 1000 per command slot", StringComparison.Ordinal));
        Assert.Contains(BenchCommand.Parse("--rate-iops", "-1").Errors, e => e.Contains("--rate-iops -1", StringComparison.Ordinal));
    }

    [Fact]
    public void Idle_HoldsControllers_AndMoreThanOneControllerNeedsIdle()
    {
        var (o, errors) = BenchCommand.Parse("--idle", "--controllers", "64", "--queues", "4", "--time", "30s");
        Assert.Empty(errors);
        Assert.True(o!.Idle);
        Assert.Equal((64, 4), (o.Controllers, o.Queues));
        Assert.Equal(1, BenchCommand.Parse().Options!.Controllers);

        Assert.Contains(BenchCommand.Parse("--controllers", "2").Errors, e => e.Contains("--controllers 2 needs --idle", StringComparison.Ordinal));
        Assert.Contains(BenchCommand.Parse("--idle", "--controllers", "0").Errors, e => e.Contains("--controllers 0: 1..1024", StringComparison.Ordinal));
        Assert.Contains(BenchCommand.Parse("--idle", "--verify").Errors, e => e.Contains("--idle sends no I/O", StringComparison.Ordinal));
    }

    [Fact]
    public void EveryOption_IsBound()
    {
        var (o, errors) = BenchCommand.Parse(
            "--addr", "10.0.0.5:4421", "--nqn", "nqn.2026-11.io.edgeblock:vm1", "--nsid", "3", "--rw", "randrw", "--rwmix-read", "30",
            "--bs", "128k", "--qd", "8", "--queues", "2", "--time", "500ms", "--ramp", "2s", "--verify", "--size-limit", "1G",
            "--io-limit", "64M", "--json", "--hostnqn", "nqn.2014-08.org.nvmexpress:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427",
            "--digest", "header,data", "--server-pid", Environment.ProcessId.ToString(), "--seed", "42");

        Assert.Empty(errors);
        Assert.NotNull(o);
        Assert.Equal(("10.0.0.5", 4421), (o.Host, o.Port));
        Assert.Equal("nqn.2026-11.io.edgeblock:vm1", o.SubsystemNqn);
        Assert.Equal(3u, o.Nsid);
        Assert.Equal(BenchPattern.RandRw, o.Pattern);
        Assert.True(o.HasReads && o.HasWrites && o.IsRandom);
        Assert.Equal(30, o.ReadMixPercent);
        Assert.Equal(128 * 1024, o.BlockSize);
        Assert.Equal((8, 2), (o.QueueDepth, o.Queues));
        Assert.Equal(TimeSpan.FromMilliseconds(500), o.Duration);
        Assert.Equal(TimeSpan.FromSeconds(2), o.Ramp);
        Assert.True(o.Verify && o.Json && o.HeaderDigest && o.DataDigest);
        Assert.Equal(1L << 30, o.SizeLimit);
        Assert.Equal(64L << 20, o.IoLimit);
        Assert.Equal("nqn.2014-08.org.nvmexpress:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427", o.HostNqn);
        Assert.Equal(Environment.ProcessId, o.ServerPid);
        Assert.Equal(42UL, o.Seed);
    }

    [Theory]
    [InlineData("--rw", "randomread", "--rw 'randomread' is not a pattern")]
    [InlineData("--bs", "4q", "--bs:")]
    [InlineData("--bs", "1000", "multiple of 512")]
    [InlineData("--qd", "0", "--qd 0")]
    [InlineData("--time", "soon", "--time:")]
    [InlineData("--addr", "127.0.0.1:99999", "the port must be 1..65535")]
    [InlineData("--digest", "both", "is not a digest")]
    [InlineData("--nqn", "not-an-nqn", "is not a valid NQN")]
    [InlineData("--rwmix-read", "101", "--rwmix-read 101")]
    [InlineData("--server-pid", "2147483647", "/proc/2147483647/stat does not exist")]
    public void BadValues_AreRefusedWithAMessageThatNamesTheOption(string option, string value, string expected)
    {
        var (o, errors) = BenchCommand.Parse(option, value);

        Assert.Null(o);
        Assert.Contains(errors, e => e.Contains(expected, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("15s", 15_000)]
    [InlineData("500ms", 500)]
    [InlineData("2m", 120_000)]
    [InlineData("2.5", 2_500)]
    [InlineData("1h", 3_600_000)]
    public void Durations(string text, double ms)
    {
        Assert.True(BenchOptions.TryParseDuration(text, out var d, out _));
        Assert.Equal(ms, d.TotalMilliseconds, tolerance: 0.001);
    }

    [Theory]
    [InlineData("127.0.0.1:4420", "127.0.0.1", 4420)]
    [InlineData("localhost", "localhost", 4420)]
    [InlineData("[::1]:4421", "::1", 4421)]
    [InlineData("::1", "::1", 4420)]
    [InlineData("target.example:8009", "target.example", 8009)]
    public void Addresses(string text, string host, int port)
    {
        Assert.True(BenchOptions.TryParseAddress(text, out string h, out int p, out string error), error);
        Assert.Equal((host, port), (h, p));
    }
}
