using EdgeBlock.Storage.Tests.Support;

namespace EdgeBlock.Storage.Tests;

public sealed class FileIoOperationTests : IAsyncLifetime
{
    private readonly TempDirectory _directory = new();
    private FileBlockDevice _device = null!;

    public Task InitializeAsync()
    {
        _device = FileBlockDevice.Open(_directory.File("device.img"), 1024 * 1024);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _device.DisposeAsync();
        _directory.Dispose();
    }

    [Fact]
    public async Task CompletedRequest_ReturnsItsOperationToThePool()
    {
        Assert.Equal(BlockStatus.Success, await _device.ReadAsync(0, new byte[512]));
        Assert.Equal(1, _device.Operations.FreeCount);

        Assert.Equal(BlockStatus.Success, await _device.WriteAsync(0, new byte[512], fua: false));
        Assert.Equal(1, _device.Operations.FreeCount);
    }

    [Fact]
    public async Task ConcurrentRequests_EachGetTheirOwnOperation_AllReturned()
    {
        ValueTask<BlockStatus>[] reads = new ValueTask<BlockStatus>[16];
        for (int i = 0; i < reads.Length; i++)
        {
            reads[i] = _device.ReadAsync(i, new byte[512]);
        }
        foreach (ValueTask<BlockStatus> read in reads)
        {
            Assert.Equal(BlockStatus.Success, await read);
        }

        Assert.InRange(_device.Operations.FreeCount, 1, reads.Length);
    }

    [Fact]
    public void Rent_AfterReturn_ReusesTheOperation()
    {
        FileIoOperation operation = _device.Operations.Rent();
        _device.Operations.Return(operation);

        Assert.Same(operation, _device.Operations.Rent());
    }

    [Fact]
    public void Return_BeyondTheBound_DropsOperations()
    {
        FileIoOperation[] operations = Enumerable.Range(0, FileIoOperationPool.MaxPooled + 10)
            .Select(_ => _device.Operations.Rent()).ToArray();

        foreach (FileIoOperation operation in operations)
        {
            _device.Operations.Return(operation);
        }

        Assert.Equal(FileIoOperationPool.MaxPooled, _device.Operations.FreeCount);
    }

    [Fact]
    public async Task Result_ReadTwice_Throws_InsteadOfReturningAnotherRequestsResult()
    {
        ValueTask<BlockStatus> read = _device.ReadAsync(0, new byte[512]);
        Assert.Equal(BlockStatus.Success, await read);

        // The operation is back in the pool; its next user must not be confused with us.
        Assert.Equal(BlockStatus.Success, await _device.ReadAsync(1, new byte[512]));
        Assert.Throws<InvalidOperationException>(() => read.GetAwaiter().GetResult());
    }
}
