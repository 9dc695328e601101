namespace EdgeBlock.Storage.Tests;

public sealed class CompletionBatchTests
{
    private sealed class Recorder(List<string> log, string name) : ICompletionBatchWork
    {
        public void RunAfterBatch() => log.Add(name);
    }

    [Fact]
    public void TryDefer_OutsideABatch_SaysNo()
    {
        var log = new List<string>();
        Assert.False(CompletionBatch.TryDefer(new Recorder(log, "a")));
        Assert.Empty(log);
    }

    [Fact]
    public void DeferredWork_RunsAtTheEndOfTheBatch_InOrder_Once()
    {
        var log = new List<string>();
        CompletionBatch.Begin();
        Assert.True(CompletionBatch.TryDefer(new Recorder(log, "a")));
        Assert.True(CompletionBatch.TryDefer(new Recorder(log, "b")));
        Assert.Empty(log);

        CompletionBatch.End();
        Assert.Equal(["a", "b"], log);

        CompletionBatch.Begin();
        CompletionBatch.End();
        Assert.Equal(["a", "b"], log);
        Assert.False(CompletionBatch.TryDefer(new Recorder(log, "c")));
    }

    [Fact]
    public void ABatchOnOneThread_DoesNotCaptureWorkOfAnother()
    {
        var log = new List<string>();
        bool deferredElsewhere = true;
        CompletionBatch.Begin();
        try
        {
            var other = new Thread(() => deferredElsewhere = CompletionBatch.TryDefer(new Recorder(log, "x")));
            other.Start();
            other.Join();
        }
        finally
        {
            CompletionBatch.End();
        }
        Assert.False(deferredElsewhere);
        Assert.Empty(log);
    }
}
