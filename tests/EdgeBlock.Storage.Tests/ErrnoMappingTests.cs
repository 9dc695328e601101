namespace EdgeBlock.Storage.Tests;

public sealed class ErrnoMappingTests
{
    [Theory]
    [InlineData(0, BlockStatus.Success)]
    [InlineData(LinuxNative.ENOSPC, BlockStatus.CapacityExceeded)]
    [InlineData(LinuxNative.EDQUOT, BlockStatus.CapacityExceeded)]
    [InlineData(LinuxNative.EIO, BlockStatus.WriteError)]
    [InlineData(LinuxNative.EINVAL, BlockStatus.WriteError)]
    public void ToStatus_Errno_MapsSpaceToCapacityExceeded_RestToFailure(int errno, BlockStatus expected)
    {
        Assert.Equal(expected, ErrnoMapping.ToStatus(errno, BlockStatus.WriteError));
    }

    [Fact]
    public void ToStatus_Errno_UsesTheOperationsOwnFailure()
    {
        Assert.Equal(BlockStatus.ReadError, ErrnoMapping.ToStatus(LinuxNative.EIO, BlockStatus.ReadError));
    }

    public static TheoryData<Exception, BlockStatus> Exceptions => new()
    {
        { new IOException("No space left on device", LinuxNative.ENOSPC), BlockStatus.CapacityExceeded },
        { new IOException("Disk quota exceeded", LinuxNative.EDQUOT), BlockStatus.CapacityExceeded },
        { new IOException("Input/output error", LinuxNative.EIO), BlockStatus.ReadError },
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
