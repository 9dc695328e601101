using System.Globalization;
using EdgeBlock.Interop;
using EdgeBlock.Storage.Tests.Support;
using Microsoft.Win32.SafeHandles;

namespace EdgeBlock.Storage.Tests;

public sealed class LinuxNativeTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    [Fact]
    public void Stat_OfSparseFile_MatchesCoreutilsStat()
    {
        string path = _directory.File("sparse");
        using (FileStream file = File.Create(path))
        {
            file.SetLength(10 * 1024 * 1024);
            file.Write(new byte[64 * 1024]);
            file.Flush(flushToDisk: true);
        }

        Assert.Equal(0, Native.Stat(path, Native.STATX_BASIC, out Native.StatX stat));

        // %s size, %b allocated blocks, %B their unit, %f raw mode in hex.
        string[] coreutils = Commands.Run("stat", "-c", "%s %b %B %f", path).Split(' ');
        Assert.Equal(long.Parse(coreutils[0], CultureInfo.InvariantCulture), (long)stat.Size);
        Assert.Equal(long.Parse(coreutils[1], CultureInfo.InvariantCulture) * long.Parse(coreutils[2], CultureInfo.InvariantCulture),
            (long)stat.Blocks * 512);
        Assert.Equal(int.Parse(coreutils[3], NumberStyles.HexNumber, CultureInfo.InvariantCulture), stat.Mode);
        Assert.True(stat.IsRegularFile);
        Assert.False(stat.IsBlockDevice);
    }

    [Fact]
    public void Stat_OfMissingPath_ReturnsEnoent()
    {
        Assert.Equal(Native.ENOENT, Native.Stat(_directory.File("missing"), Native.STATX_TYPE, out _));
    }

    [Fact]
    public void Open_WithODirect_KernelReportsODirect()
    {
        string path = _directory.File("direct");
        File.WriteAllBytes(path, new byte[4096]);

        Assert.Equal(0, Native.Open(path, Native.O_RDWR | Native.O_CLOEXEC | Native.O_DIRECT, out SafeFileHandle handle));
        using (handle)
        {
            Assert.Equal(0, Native.GetStatusFlags(handle, out int flags));
            Assert.NotEqual(0, flags & Native.O_DIRECT);
            Assert.NotEqual(0, ProcFdInfo.Flags(handle) & Native.O_DIRECT);
        }
    }

    [Fact]
    public void Open_MissingFileWithoutCreate_ReturnsEnoent_AndInvalidHandle()
    {
        Assert.Equal(Native.ENOENT, Native.Open(_directory.File("missing"), Native.O_RDWR, out SafeFileHandle handle));
        Assert.True(handle.IsInvalid);
    }

    [Fact]
    public void LockExclusive_HeldElsewhere_ReturnsEwouldblock()
    {
        string path = _directory.File("locked");
        Assert.Equal(0, Native.Open(path, Native.O_RDWR | Native.O_CREAT, out SafeFileHandle first));
        Assert.Equal(0, Native.Open(path, Native.O_RDWR, out SafeFileHandle second));
        using (first)
        using (second)
        {
            Assert.Equal(0, Native.LockExclusive(first));
            Assert.Equal(Native.EWOULDBLOCK, Native.LockExclusive(second));
        }
    }

    [Fact]
    public void Fallocate_PunchHole_ReadsZeroesAndKeepsSize()
    {
        string path = _directory.File("punch");
        File.WriteAllBytes(path, Enumerable.Repeat((byte)0xAA, 16384).ToArray());
        Assert.Equal(0, Native.Open(path, Native.O_RDWR, out SafeFileHandle handle));
        using (handle)
        {
            Assert.Equal(0, Native.Fallocate(handle, Native.FALLOC_FL_PUNCH_HOLE | Native.FALLOC_FL_KEEP_SIZE, 4096, 8192));
            Assert.Equal(0, Native.Fdatasync(handle));
        }

        byte[] content = File.ReadAllBytes(path);
        Assert.Equal(16384, content.Length);
        Assert.All(content.AsSpan(0, 4096).ToArray(), b => Assert.Equal(0xAA, b));
        Assert.True(content.AsSpan(4096, 8192).IndexOfAnyExcept((byte)0) < 0);
        Assert.All(content.AsSpan(12288).ToArray(), b => Assert.Equal(0xAA, b));
    }

    [Fact]
    public void GetBlockDeviceSize_OfRegularFile_Fails()
    {
        string path = _directory.File("regular");
        File.WriteAllBytes(path, new byte[512]);
        Assert.Equal(0, Native.Open(path, Native.O_RDWR, out SafeFileHandle handle));
        using (handle)
        {
            Assert.NotEqual(0, Native.GetBlockDeviceSize(handle, out _));
        }
    }

    [Fact]
    public void Describe_NamesTheErrorAndItsNumber()
    {
        Assert.Equal("No such file or directory (errno 2)", Native.Describe(Native.ENOENT));
    }
}
