namespace EdgeBlock.Cli.Tests;

public sealed class BenchVerifyTests
{
    private const ulong Seed = 0x1234_5678_9ABC_DEF0;

    [Theory]
    [InlineData(512)]
    [InlineData(4096)]
    public void AWrittenPattern_ReadsBackClean(int lbaSize)
    {
        var buffer = new byte[lbaSize * 4];
        VerifyBlock.Fill(buffer, lbaSize, slba: 1000, Seed, generation: 7);

        for (int i = 0; i < 4; i++)
            Assert.Equal(VerifyError.None, VerifyBlock.Check(buffer.AsSpan(i * lbaSize, lbaSize), 1000 + (ulong)i, Seed, out _));
    }

    [Fact]
    public void Corruption_MisdirectionStaleDataAndHoles_AreEachNamed()
    {
        var block = new byte[4096];
        VerifyBlock.FillOne(block, lba: 5, Seed, generation: 1);

        Assert.Equal(VerifyError.WrongLba, VerifyBlock.Check(block, 6, Seed, out ulong found));
        Assert.Equal(5UL, found);
        Assert.Equal(VerifyError.WrongSeed, VerifyBlock.Check(block, 5, Seed + 1, out _));
        Assert.Contains("LBA 6: holds the data of LBA 5", VerifyBlock.Describe(VerifyError.WrongLba, 6, 5));

        block[2000] ^= 0x01;
        Assert.Equal(VerifyError.BadCrc, VerifyBlock.Check(block, 5, Seed, out _));

        Assert.Equal(VerifyError.NoHeader, VerifyBlock.Check(new byte[4096], 5, Seed, out _));
    }

    [Fact]
    public void AWorker_CountsMismatches_AndKeepsTheFirstFewWithTheirLba()
    {
        var worker = new BenchWorker(0, 1, new byte[4096], Seed);
        var data = new byte[512 * 8];
        VerifyBlock.Fill(data, 512, slba: 100, Seed, generation: 1);
        data[3 * 512 + 100] ^= 0xFF; // LBA 103

        worker.VerifyRead(data, 512, slba: 100);

        Assert.Equal(8, worker.VerifiedBlocks);
        Assert.Equal(1, worker.Mismatches);
        Assert.Equal("LBA 103: CRC32C mismatch (contents changed)", Assert.Single(worker.MismatchDetails));
    }

    [Fact]
    public void ProcStat_TimesAreFields14And15_EvenWithParenthesesInTheName()
    {
        const string stat = "4242 (edge block) (x)) S 1 4242 4242 0 -1 4194560 1795 0 0 0 1234 567 0 0 20 0 12 0 100 0 0";
        Assert.True(ProcessCpu.TryParseStat(stat, out long ticks));
        Assert.Equal(1234 + 567, ticks);
        Assert.False(ProcessCpu.TryParseStat("4242 (short) S 1", out _));
        Assert.True(ProcessCpu.TryReadTicks(Environment.ProcessId, out _));
        Assert.True(ProcessCpu.ClockTicksPerSecond > 0);
    }
}
