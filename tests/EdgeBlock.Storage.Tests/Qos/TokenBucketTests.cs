using EdgeBlock.Storage.Qos;

namespace EdgeBlock.Storage.Tests.Qos;

public class TokenBucketTests
{
    private const long Hz = 1_000_000; // made-up clock: microseconds

    [Fact]
    public void Take_FullBucket_AllowsTheBurstThenWaitsForTheRate()
    {
        var bucket = new TokenBucket(rate: 100, capacity: 10, now: 0, Hz);
        for (int i = 0; i < 10; i++)
        {
            Assert.True(bucket.CanTake(1, 0));
            bucket.Take(1, 0);
        }
        Assert.False(bucket.CanTake(1, 0));
        Assert.Equal(Hz / 100, bucket.TicksUntil(1, 0)); // one token per 10 ms
        Assert.True(bucket.CanTake(1, Hz / 100));
    }

    [Fact]
    public void Refill_LongIdle_StopsAtTheBurst()
    {
        var bucket = new TokenBucket(rate: 100, capacity: 10, now: 0, Hz);
        bucket.Take(10, 0);
        Assert.Equal(5, bucket.Tokens(Hz / 20), 6); // 50 ms at 100/s
        Assert.Equal(10, bucket.Tokens(100 * Hz), 6);
    }

    [Fact]
    public void Take_CostAboveTheBurst_RunsWhenFullAndRepaysTheDebtAtTheRate()
    {
        var bucket = new TokenBucket(rate: 1000, capacity: 100, now: 0, Hz);
        Assert.True(bucket.CanTake(400, 0)); // full: an operation larger than the burst may start
        bucket.Take(400, 0);
        Assert.Equal(-300, bucket.Tokens(0), 6);
        Assert.Equal(400 * Hz / 1000, bucket.TicksUntil(400, 0)); // until full again: 300 owed + 100
    }

    [Fact]
    public void Tokens_ClockReadBeforeTheLastRead_AddsNothing()
    {
        var bucket = new TokenBucket(rate: 100, capacity: 10, now: Hz, Hz);
        bucket.Take(10, Hz);
        Assert.Equal(0, bucket.Tokens(0), 6);
    }

    [Theory]
    [InlineData(0, 1)]
    [InlineData(-1, 1)]
    [InlineData(10, 0.5)]
    public void New_BadRateOrBurst_Throws(double rate, double capacity)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new TokenBucket(rate, capacity, 0, Hz));
    }
}
