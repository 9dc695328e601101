using EdgeBlock.Interop;

namespace EdgeBlock.Storage.Tests;

public sealed class ErrnoMappingTests
{
    [Theory]
    [InlineData(0, BlockStatus.Success)]
    [InlineData(Native.ENOSPC, BlockStatus.CapacityExceeded)]
    [InlineData(Native.EDQUOT, BlockStatus.CapacityExceeded)]
    [InlineData(Native.EIO, BlockStatus.WriteError)]
    [InlineData(Native.EINVAL, BlockStatus.WriteError)]
    public void ToStatus_Errno_MapsSpaceToCapacityExceeded_RestToFailure(int errno, BlockStatus expected)
    {
        Assert.Equal(expected, ErrnoMapping.ToStatus(errno, BlockStatus.WriteError));
    }

    [Fact]
    public void ToStatus_Errno_UsesTheOperationsOwnFailure()
    {
        Assert.Equal(BlockStatus.ReadError, ErrnoMapping.ToStatus(Native.EIO, BlockStatus.ReadError));
    }

    public static TheoryData<Exception, BlockStatus> Exceptions => new()
    {
        { new IOException("No space left on device", Native.ENOSPC), BlockStatus.CapacityExceeded },
        { new IOException("Disk quota exceeded", Native.EDQUOT), BlockStatus.CapacityExceeded },
        { new IOException("Input/output error", Native.EIO), BlockStatus.ReadError },
        { new IOException("no errno"), BlockStatus.ReadError },
        { new UnauthorizedAccessException(), BlockStatus.ReadError },
        { new ObjectDisposedException("handle"), BlockStatus.NotReady },
        { new ArgumentException("a bug of ours"), BlockStatus.InternalError },
    };

    [Theory]
    [MemberData(nameof(Exceptions))]
    public void ToStatus_Exception_MapsWhatRandomAccessThrows(Exception exception, BlockStatus expected)
    {
        Assert.Equal(expected, ErrnoMapping.ToStatus(exception, BlockStatus.ReadError));
    }
}
