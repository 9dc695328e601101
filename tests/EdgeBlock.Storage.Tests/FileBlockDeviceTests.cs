using System.Globalization;
using EdgeBlock.Interop;
using EdgeBlock.Storage.Tests.Support;

namespace EdgeBlock.Storage.Tests;

public sealed class FileBlockDeviceTests : BlockDeviceContractTests, IDisposable
{
    private const int MiB = 1024 * 1024;

    private readonly TempDirectory _directory = new();
    private readonly List<TempDirectory> _otherDirectories = [];
    private int _deviceCount;

    protected override IBlockDevice CreateDevice(long sizeBytes, int blockSize) =>
        FileBlockDevice.Open(_directory.File($"device{Interlocked.Increment(ref _deviceCount)}.img"), sizeBytes, blockSize);

    public void Dispose()
    {
        _directory.Dispose();
        _otherDirectories.ForEach(directory => directory.Dispose());
    }

    [Theory]
    [MemberData(nameof(FileSystems.All), MemberType = typeof(FileSystems))]
    public async Task Open_NewFile_CreatesSparseFileOfRequestedSize(string fileSystem)
    {
        string path = On(fileSystem).File("new.img");

        await using FileBlockDevice device = FileBlockDevice.Open(path, 64 * MiB);

        Assert.Equal(path, device.Path);
        Assert.False(device.IsBlockDevice);
        Assert.Equal(64 * MiB / 512, device.BlockCount);
        Assert.Equal(64 * MiB, new FileInfo(path).Length);
        Assert.InRange(AllocatedBytes(path), 0, 64 * 1024);
    }

    [Theory]
    [MemberData(nameof(FileSystems.OnDisk), MemberType = typeof(FileSystems))]
    public async Task Open_OnDiskFileSystem_OpensAnODirectDescriptorBesideTheBufferedOne(string fileSystem)
    {
        string path = On(fileSystem).File("direct.img");

        await using FileBlockDevice device = FileBlockDevice.Open(path, 4 * MiB);

        Assert.True(device.UsesDirectIo);
        Assert.InRange(device.DirectIoAlignment, 1, AlignedBuffer.Alignment);
        Assert.True(int.IsPow2(device.DirectIoAlignment));
        IReadOnlyList<int> flags = ProcFdInfo.FlagsOfDescriptorsOn(path);
        Assert.Equal(2, flags.Count);
        Assert.Single(flags, f => (f & Native.O_DIRECT) != 0);
    }

    [Fact]
    public async Task Open_WithoutDirectIo_UsesOnlyTheBufferedDescriptor()
    {
        string path = _directory.File("buffered.img");

        await using FileBlockDevice device = FileBlockDevice.Open(path, 4 * MiB, 512, preferDirectIo: false);

        Assert.False(device.UsesDirectIo);
        Assert.Equal(0, device.DirectIoAlignment);
        Assert.Equal(0, Assert.Single(ProcFdInfo.FlagsOfDescriptorsOn(path)) & Native.O_DIRECT);
        using var data = new AlignedBuffer(64 * 1024);
        DataPattern.Fill(data.Span, 0, seed: 1);
        Assert.Equal(BlockStatus.Success, await device.WriteAsync(0, data.Memory, fua: true));
        data.Span.Clear();
        Assert.Equal(BlockStatus.Success, await device.ReadAsync(0, data.Memory));
        DataPattern.AssertMatches(data.Span, 0, seed: 1);
    }

    [Fact]
    public async Task Open_ExistingFileWithoutSize_ExposesItsWholeBlocks()
    {
        string path = _directory.File("existing.img");
        File.WriteAllBytes(path, new byte[MiB + 100]);

        await using FileBlockDevice device = FileBlockDevice.Open(path, 0);

        Assert.Equal(MiB / 512, device.BlockCount);
        Assert.Equal(MiB + 100, new FileInfo(path).Length);
    }

    [Fact]
    public async Task Open_LargerFile_ExposesRequestedSize_AndKeepsTheRest()
    {
        string path = _directory.File("larger.img");
        byte[] content = DataPattern.Create(2 * MiB, 0, seed: 2);
        File.WriteAllBytes(path, content);

        await using (FileBlockDevice device = FileBlockDevice.Open(path, MiB))
        {
            Assert.Equal(MiB / 512, device.BlockCount);
            Assert.Equal(BlockStatus.OutOfRange, await device.ReadAsync(MiB / 512, new byte[512]));
        }

        Assert.Equal(content, File.ReadAllBytes(path));
    }

    [Fact]
    public async Task Open_SmallerFile_ExtendsIt_KeepingItsData()
    {
        string path = _directory.File("smaller.img");
        File.WriteAllBytes(path, DataPattern.Create(4096, 0, seed: 3));

        await using FileBlockDevice device = FileBlockDevice.Open(path, MiB);

        Assert.Equal(MiB, new FileInfo(path).Length);
        byte[] readBack = new byte[8192];
        Assert.Equal(BlockStatus.Success, await device.ReadAsync(0, readBack));
        DataPattern.AssertMatches(readBack.AsSpan(0, 4096), 0, seed: 3);
        DataPattern.AssertZeroes(readBack.AsSpan(4096));
    }

    [Fact]
    public void Open_MissingFileWithoutSize_ThrowsNamingThePath_AndCreatesNothing()
    {
        string path = _directory.File("missing.img");

        var error = Assert.Throws<FileNotFoundException>(() => FileBlockDevice.Open(path, 0));

        Assert.Contains(path, error.Message);
        Assert.Contains("give a size", error.Message);
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void Open_EmptyFileWithoutSize_ThrowsNamingThePath()
    {
        string path = _directory.File("empty.img");
        File.WriteAllBytes(path, []);

        var error = Assert.Throws<IOException>(() => FileBlockDevice.Open(path, 0));

        Assert.Contains(path, error.Message);
        Assert.Contains("less than one 512-byte block", error.Message);
    }

    [Fact]
    public void Open_InMissingDirectory_ThrowsNamingThePathAndTheError()
    {
        string path = Path.Combine(_directory.Path, "no-such-directory", "device.img");

        var error = Assert.Throws<IOException>(() => FileBlockDevice.Open(path, MiB));

        Assert.Contains(path, error.Message);
        Assert.Contains("No such file or directory", error.Message);
    }

    [Fact]
    public void Open_Directory_ThrowsNamingThePath()
    {
        var error = Assert.Throws<IOException>(() => FileBlockDevice.Open(_directory.Path, MiB));

        Assert.Contains(_directory.Path, error.Message);
        Assert.Contains("directory", error.Message);
    }

    [Fact]
    public void Open_CharacterDevice_ThrowsNamingThePath()
    {
        var error = Assert.Throws<IOException>(() => FileBlockDevice.Open("/dev/null", 0));

        Assert.Contains("'/dev/null'", error.Message);
        Assert.Contains("neither a regular file nor a block device", error.Message);
    }

    [Fact]
    public async Task Open_FileAlreadyOpen_ThrowsUntilTheFirstDeviceCloses()
    {
        string path = _directory.File("shared.img");
        FileBlockDevice first = FileBlockDevice.Open(path, MiB);

        var error = Assert.Throws<IOException>(() => FileBlockDevice.Open(path, MiB));
        Assert.Contains(path, error.Message);
        Assert.Contains("has it open", error.Message);

        await first.DisposeAsync();
        await using FileBlockDevice second = FileBlockDevice.Open(path, MiB);
        Assert.Equal(MiB / 512, second.BlockCount);
    }

    [Fact]
    public async Task Open_FileReleasedWithinAMoment_WaitsForItInsteadOfThrowing()
    {
        // As when a child process forked during our last use still holds our old descriptor.
        string path = _directory.File("briefly-held.img");
        Assert.Equal(0, Native.Open(path, Native.O_RDWR | Native.O_CREAT | Native.O_CLOEXEC, out var holder));
        Assert.Equal(0, Native.LockExclusive(holder));
        // A thread of its own: busy parallel tests may keep the thread pool from running a timer on time.
        var release = new Thread(() =>
        {
            Thread.Sleep(100);
            holder.Dispose();
        });
        release.Start();

        await using FileBlockDevice device = FileBlockDevice.Open(path, MiB);

        Assert.True(holder.IsClosed);
        Assert.Equal(MiB / 512, device.BlockCount);
    }

    [Theory]
    [InlineData(1000, 512)]
    [InlineData(4096, 1000)]
    [InlineData(4096, 256)]
    public void Open_InvalidGeometry_ThrowsBeforeCreatingTheFile(long sizeBytes, int blockSize)
    {
        string path = _directory.File("invalid.img");

        Assert.Throws<ArgumentOutOfRangeException>(() => FileBlockDevice.Open(path, sizeBytes, blockSize));

        Assert.False(File.Exists(path));
    }

    [Fact]
    public async Task IsDirectTransfer_NeedsAlignedAddressOffsetAndLength()
    {
        await using var device = (FileBlockDevice)CreateDevice(MiB, 512);
        Assert.True(device.UsesDirectIo);
        using var buffer = new AlignedBuffer(8192);
        int alignment = device.DirectIoAlignment;

        unsafe
        {
            Assert.True(device.IsDirectTransfer(buffer.Pointer, alignment, alignment));
            Assert.False(device.IsDirectTransfer(buffer.Pointer + 1, alignment, alignment));
            Assert.False(device.IsDirectTransfer(buffer.Pointer, alignment + 1, alignment));
            Assert.False(device.IsDirectTransfer(buffer.Pointer, alignment, alignment + 1));
        }
    }

    [PageCacheTheory]
    [MemberData(nameof(FileSystems.OnDisk), MemberType = typeof(FileSystems))]
    public async Task Write_AlignedBuffer_BypassesPageCache_UnalignedBufferGoesThroughIt(string fileSystem)
    {
        string path = On(fileSystem).File("cache.img");
        await using FileBlockDevice device = FileBlockDevice.Open(path, 4 * MiB);
        using var aligned = new AlignedBuffer(MiB);
        DataPattern.Fill(aligned.Span, 0, seed: 4);

        Assert.Equal(BlockStatus.Success, await device.WriteAsync(0, aligned.Memory, fua: false));
        Assert.Equal(0ul, PageCache.Of(path).CachedPages);

        Memory<byte> unaligned = DataPattern.Create(64 * 1024 + 1, 2 * MiB - 1, seed: 4).AsMemory(1);
        Assert.Equal(BlockStatus.Success, await device.WriteAsync(2 * MiB / 512, unaligned, fua: false));
        Assert.Equal(16ul, PageCache.Of(path).CachedPages);

        Assert.Equal(BlockStatus.Success, await device.ReadAsync(0, aligned.Memory));
        DataPattern.AssertMatches(aligned.Span, 0, seed: 4);
    }

    [Theory]
    [MemberData(nameof(FileSystems.All), MemberType = typeof(FileSystems))]
    public async Task Reads_SeeTheLatestWrite_WhicheverDescriptorCarriedEach(string fileSystem)
    {
        await using FileBlockDevice device = FileBlockDevice.Open(On(fileSystem).File("mixed.img"), 4 * MiB);
        using var aligned = new AlignedBuffer(64 * 1024);
        byte[] unalignedStorage = new byte[64 * 1024 + 1];
        Memory<byte> unaligned = unalignedStorage.AsMemory(1);

        // Direct write, then a buffered overwrite of one block, then a direct read.
        DataPattern.Fill(aligned.Span, 0, seed: 5);
        Assert.Equal(BlockStatus.Success, await device.WriteAsync(0, aligned.Memory, fua: false));
        Assert.Equal(BlockStatus.Success, await device.WriteAsync(8, DataPattern.Create(512, 8 * 512, seed: 6).AsMemory(), fua: false));
        Assert.Equal(BlockStatus.Success, await device.ReadAsync(0, aligned.Memory));
        DataPattern.AssertMatches(aligned.Span[..(8 * 512)], 0, seed: 5);
        DataPattern.AssertMatches(aligned.Span.Slice(8 * 512, 512), 8 * 512, seed: 6);
        DataPattern.AssertMatches(aligned.Span[(9 * 512)..], 9 * 512, seed: 5);

        // Buffered read caches the pages; a direct overwrite must not leave them stale.
        Assert.Equal(BlockStatus.Success, await device.ReadAsync(0, unaligned));
        DataPattern.Fill(aligned.Span, 0, seed: 7);
        Assert.Equal(BlockStatus.Success, await device.WriteAsync(0, aligned.Memory, fua: false));
        Assert.Equal(BlockStatus.Success, await device.ReadAsync(0, unaligned));
        DataPattern.AssertMatches(unaligned.Span, 0, seed: 7);
    }

    [Theory]
    [MemberData(nameof(FileSystems.All), MemberType = typeof(FileSystems))]
    public async Task Write_Fua_ThenReopen_DataPersists(string fileSystem)
    {
        string path = On(fileSystem).File("fua.img");
        using var data = new AlignedBuffer(128 * 1024);
        DataPattern.Fill(data.Span, 100 * 512, seed: 8);
        await using (FileBlockDevice device = FileBlockDevice.Open(path, 4 * MiB))
        {
            Assert.Equal(BlockStatus.Success, await device.WriteAsync(100, data.Memory, fua: true));
        }

        await using FileBlockDevice reopened = FileBlockDevice.Open(path, 0);

        Assert.Equal(4 * MiB / 512, reopened.BlockCount);
        data.Span.Clear();
        Assert.Equal(BlockStatus.Success, await reopened.ReadAsync(100, data.Memory));
        DataPattern.AssertMatches(data.Span, 100 * 512, seed: 8);
    }

    [Theory]
    [MemberData(nameof(FileSystems.All), MemberType = typeof(FileSystems))]
    public async Task Flush_ThenReopen_DataPersists(string fileSystem)
    {
        string path = On(fileSystem).File("flush.img");
        byte[] data = DataPattern.Create(3 * 512, 7 * 512, seed: 9);
        await using (FileBlockDevice device = FileBlockDevice.Open(path, 4 * MiB))
        {
            Assert.Equal(BlockStatus.Success, await device.WriteAsync(7, data, fua: false));
            Assert.Equal(BlockStatus.Success, await device.FlushAsync());
        }

        await using FileBlockDevice reopened = FileBlockDevice.Open(path, 4 * MiB);

        byte[] readBack = new byte[data.Length];
        Assert.Equal(BlockStatus.Success, await reopened.ReadAsync(7, readBack));
        Assert.Equal(data, readBack);
    }

    [PageCacheTheory]
    [MemberData(nameof(FileSystems.OnDisk), MemberType = typeof(FileSystems))]
    public async Task Write_Fua_LeavesNoDirtyPagesInTheFile(string fileSystem)
    {
        string path = On(fileSystem).File("fua-dirty.img");
        await using FileBlockDevice device = FileBlockDevice.Open(path, 4 * MiB);
        // Unaligned buffers take the buffered path, where data waits in the page cache.
        Assert.Equal(BlockStatus.Success, await device.WriteAsync(0, new byte[4097].AsMemory(1), fua: false));

        Assert.Equal(BlockStatus.Success, await device.WriteAsync(1024, new byte[4097].AsMemory(1), fua: true));

        PageCache.Stat cache = PageCache.Of(path);
        Assert.Equal(2ul, cache.CachedPages);
        Assert.Equal(0ul, cache.DirtyPages);
    }

    [PageCacheTheory]
    [MemberData(nameof(FileSystems.OnDisk), MemberType = typeof(FileSystems))]
    public async Task Flush_LeavesNoDirtyPagesInTheFile(string fileSystem)
    {
        string path = On(fileSystem).File("flush-dirty.img");
        await using FileBlockDevice device = FileBlockDevice.Open(path, 4 * MiB);
        Assert.Equal(BlockStatus.Success, await device.WriteAsync(0, new byte[8193].AsMemory(1), fua: false));

        Assert.Equal(BlockStatus.Success, await device.FlushAsync());

        Assert.Equal(0ul, PageCache.Of(path).DirtyPages);
    }

    [Theory]
    [MemberData(nameof(FileSystems.All), MemberType = typeof(FileSystems))]
    public async Task Deallocate_PunchesHole_AllocatedSizeShrinks(string fileSystem)
    {
        string path = On(fileSystem).File("punch.img");
        await using FileBlockDevice device = FileBlockDevice.Open(path, 8 * MiB);
        Assert.True(device.SupportsDeallocate);
        using var data = new AlignedBuffer(4 * MiB);
        DataPattern.Fill(data.Span, 0, seed: 10);
        Assert.Equal(BlockStatus.Success, await device.WriteAsync(0, data.Memory, fua: true));
        long allocatedBefore = AllocatedBytes(path);
        Assert.True(allocatedBefore >= 4 * MiB, $"{allocatedBefore} bytes allocated after writing 4 MiB.");

        Assert.Equal(BlockStatus.Success, await device.DeallocateAsync(MiB / 512, 2 * MiB / 512));

        long allocatedAfter = AllocatedBytes(path);
        Assert.True(allocatedAfter <= allocatedBefore - 2 * MiB, $"{allocatedAfter} bytes allocated after punching 2 MiB out of {allocatedBefore}.");
        Assert.Equal(BlockStatus.Success, await device.ReadAsync(0, data.Memory));
        DataPattern.AssertMatches(data.Span[..MiB], 0, seed: 10);
        DataPattern.AssertZeroes(data.Span.Slice(MiB, 2 * MiB));
        DataPattern.AssertMatches(data.Span[(3 * MiB)..], 3 * MiB, seed: 10);
    }

    [Theory]
    [MemberData(nameof(FileSystems.All), MemberType = typeof(FileSystems))]
    public async Task WriteZeroes_WithoutDeallocate_ReadsZeroes_AndKeepsTheSpaceAllocated(string fileSystem)
    {
        string path = On(fileSystem).File("zeroes.img");
        await using FileBlockDevice device = FileBlockDevice.Open(path, 8 * MiB);
        using var data = new AlignedBuffer(4 * MiB);
        DataPattern.Fill(data.Span, 0, seed: 11);
        Assert.Equal(BlockStatus.Success, await device.WriteAsync(0, data.Memory, fua: true));

        // 2.5 MiB: more than one piece where zeroes have to be written out (tmpfs has no ZERO_RANGE).
        Assert.Equal(BlockStatus.Success, await device.WriteZeroesAsync(MiB / 512, 5 * MiB / 2 / 512, deallocate: false));
        Assert.Equal(BlockStatus.Success, await device.FlushAsync());

        Assert.True(AllocatedBytes(path) >= 4 * MiB, $"{AllocatedBytes(path)} bytes allocated after zeroing without deallocate.");
        Assert.Equal(BlockStatus.Success, await device.ReadAsync(0, data.Memory));
        DataPattern.AssertMatches(data.Span[..MiB], 0, seed: 11);
        DataPattern.AssertZeroes(data.Span.Slice(MiB, 5 * MiB / 2));
        DataPattern.AssertMatches(data.Span[(7 * MiB / 2)..], 7 * MiB / 2, seed: 11);
    }

    [Theory]
    [MemberData(nameof(FileSystems.All), MemberType = typeof(FileSystems))]
    public async Task WriteZeroes_WithDeallocate_FreesTheSpace(string fileSystem)
    {
        string path = On(fileSystem).File("zeroes-deallocate.img");
        await using FileBlockDevice device = FileBlockDevice.Open(path, 8 * MiB);
        using var data = new AlignedBuffer(4 * MiB);
        DataPattern.Fill(data.Span, 0, seed: 12);
        Assert.Equal(BlockStatus.Success, await device.WriteAsync(0, data.Memory, fua: true));

        Assert.Equal(BlockStatus.Success, await device.WriteZeroesAsync(0, 4 * MiB / 512, deallocate: true));

        Assert.InRange(AllocatedBytes(path), 0, 64 * 1024);
        Assert.Equal(BlockStatus.Success, await device.ReadAsync(0, data.Memory));
        DataPattern.AssertZeroes(data.Span);
    }

    [Fact]
    public async Task Read_FileTruncatedBehindTheDevice_ReadsZeroesPastItsEnd()
    {
        string path = _directory.File("truncated.img");
        await using FileBlockDevice device = FileBlockDevice.Open(path, MiB);
        using var aligned = new AlignedBuffer(16 * 1024);
        DataPattern.Fill(aligned.Span, 0, seed: 13);
        Assert.Equal(BlockStatus.Success, await device.WriteAsync(0, aligned.Memory, fua: true));

        // Cut mid-block: a direct read comes back short and must finish through the page cache.
        Commands.Run("truncate", "-s", "6000", path);

        aligned.Span.Fill(0xAA);
        Assert.Equal(BlockStatus.Success, await device.ReadAsync(0, aligned.Memory));
        DataPattern.AssertMatches(aligned.Span[..6000], 0, seed: 13);
        DataPattern.AssertZeroes(aligned.Span[6000..]);
        byte[] unaligned = new byte[16 * 1024 + 1];
        unaligned.AsSpan().Fill(0xAA);
        Assert.Equal(BlockStatus.Success, await device.ReadAsync(0, unaligned.AsMemory(1)));
        DataPattern.AssertMatches(unaligned.AsSpan(1, 6000), 0, seed: 13);
        DataPattern.AssertZeroes(unaligned.AsSpan(6001));
    }

    [SmallTmpfsFact]
    public async Task Write_FileSystemFull_ReturnsCapacityExceeded()
    {
        using var tmpfs = new SmallTmpfs(256 * 1024);
        await using FileBlockDevice device = FileBlockDevice.Open(tmpfs.File("full.img"), 4 * MiB);
        using var aligned = new AlignedBuffer(MiB);

        Assert.Equal(BlockStatus.CapacityExceeded, await device.WriteAsync(0, aligned.Memory, fua: false));
        Assert.Equal(BlockStatus.CapacityExceeded, await device.WriteAsync(2 * MiB / 512, new byte[MiB + 1].AsMemory(1), fua: false));
        Assert.Equal(BlockStatus.CapacityExceeded, await device.WriteZeroesAsync(0, 4 * MiB / 512, deallocate: false));
    }

    [Fact]
    public async Task Dispose_WithRequestsInFlight_CompletesThemWithSuccessOrNotReady()
    {
        FileBlockDevice device = FileBlockDevice.Open(_directory.File("in-flight.img"), 4 * MiB);
        using var buffer = new AlignedBuffer(64 * 1024);
        var requests = new List<ValueTask<BlockStatus>>();
        for (int i = 0; i < 64; i++)
        {
            requests.Add(i % 2 == 0 ? device.WriteAsync(i * 128, buffer.Memory, fua: true) : device.ReadAsync(i * 128, new byte[4096]));
        }

        await device.DisposeAsync();

        foreach (ValueTask<BlockStatus> request in requests)
        {
            Assert.Contains(await request, new[] { BlockStatus.Success, BlockStatus.NotReady });
        }
    }

    private TempDirectory On(string fileSystem)
    {
        TempDirectory directory = FileSystems.CreateTempDirectory(fileSystem);
        _otherDirectories.Add(directory);
        return directory;
    }

    /// <summary>Space the file system has allocated to a file, as coreutils' stat reports it.</summary>
    internal static long AllocatedBytes(string path)
    {
        string[] blocksAndUnit = Commands.Run("stat", "-c", "%b %B", path).Split(' ');
        return long.Parse(blocksAndUnit[0], CultureInfo.InvariantCulture) * long.Parse(blocksAndUnit[1], CultureInfo.InvariantCulture);
    }
}

/// <summary>The same device over a raw block device: a loop device over a backing file.</summary>
public sealed class FileBlockDeviceOnLoopDeviceTests : IDisposable
{
    private const int MiB = 1024 * 1024;

    private readonly TempDirectory _directory = new();
    private readonly string _backingFile;

    public FileBlockDeviceOnLoopDeviceTests()
    {
        _backingFile = _directory.File("backing.img");
        using FileStream backing = File.Create(_backingFile);
        backing.SetLength(8 * MiB);
    }

    public void Dispose() => _directory.Dispose();

    [LoopDeviceFact]
    public async Task Open_WithoutSize_TakesSizeAndAlignmentFromTheDevice()
    {
        using LoopDevice loop = LoopDevice.Attach(_backingFile);

        await using FileBlockDevice device = FileBlockDevice.Open(loop.Path, 0);

        Assert.True(device.IsBlockDevice);
        Assert.Equal(8 * MiB / 512, device.BlockCount);
        Assert.True(device.UsesDirectIo);
        Assert.Equal(512, device.DirectIoAlignment);
        Assert.True(device.SupportsDeallocate);
    }

    [LoopDeviceFact]
    public async Task Open_SmallerSize_ExposesOnlyThatMuch()
    {
        using LoopDevice loop = LoopDevice.Attach(_backingFile);

        await using FileBlockDevice device = FileBlockDevice.Open(loop.Path, MiB, 4096);

        Assert.Equal(MiB / 4096, device.BlockCount);
    }

    [LoopDeviceFact]
    public void Open_LargerThanTheDevice_ThrowsNamingPathAndSizes()
    {
        using LoopDevice loop = LoopDevice.Attach(_backingFile);

        var error = Assert.Throws<IOException>(() => FileBlockDevice.Open(loop.Path, 16 * MiB));

        Assert.Contains(loop.Path, error.Message);
        Assert.Contains($"holds {8 * MiB} bytes", error.Message);
    }

    [LoopDeviceFact]
    public async Task Open_DeviceAlreadyOpen_ThrowsInUse()
    {
        using LoopDevice loop = LoopDevice.Attach(_backingFile);
        await using FileBlockDevice first = FileBlockDevice.Open(loop.Path, 0);

        var error = Assert.Throws<IOException>(() => FileBlockDevice.Open(loop.Path, 0));

        Assert.Contains(loop.Path, error.Message);
        Assert.Contains("in use", error.Message);
    }

    [LoopDeviceFact]
    public async Task WriteThenFlush_LandsInTheBackingFileAtItsOffset()
    {
        using var data = new AlignedBuffer(64 * 1024);
        DataPattern.Fill(data.Span, 100 * 512, seed: 1);
        using (LoopDevice loop = LoopDevice.Attach(_backingFile))
        await using (FileBlockDevice device = FileBlockDevice.Open(loop.Path, 0))
        {
            Assert.Equal(BlockStatus.Success, await device.WriteAsync(100, data.Memory, fua: false));
            Assert.Equal(BlockStatus.Success, await device.FlushAsync());
        }

        byte[] backing = File.ReadAllBytes(_backingFile);
        DataPattern.AssertMatches(backing.AsSpan(100 * 512, data.Length), 100 * 512, seed: 1);
        DataPattern.AssertZeroes(backing.AsSpan(0, 100 * 512));
    }

    [LoopDeviceFact]
    public async Task Deallocate_ReadsZeroes_AndFreesSpaceInTheBackingFile()
    {
        using LoopDevice loop = LoopDevice.Attach(_backingFile);
        await using FileBlockDevice device = FileBlockDevice.Open(loop.Path, 0);
        using var data = new AlignedBuffer(4 * MiB);
        DataPattern.Fill(data.Span, 0, seed: 2);
        Assert.Equal(BlockStatus.Success, await device.WriteAsync(0, data.Memory, fua: true));
        long allocatedBefore = FileBlockDeviceTests.AllocatedBytes(_backingFile);

        Assert.Equal(BlockStatus.Success, await device.DeallocateAsync(0, 4 * MiB / 512));

        Assert.Equal(BlockStatus.Success, await device.FlushAsync());
        Assert.True(FileBlockDeviceTests.AllocatedBytes(_backingFile) <= allocatedBefore - 4 * MiB);
        Assert.Equal(BlockStatus.Success, await device.ReadAsync(0, data.Memory));
        DataPattern.AssertZeroes(data.Span);
    }

    [LoopDeviceFact]
    public async Task FourKiBSectors_512ByteBlocks_SmallRequestsGoThroughThePageCache()
    {
        using LoopDevice loop = LoopDevice.Attach(_backingFile, sectorSize: 4096);
        await using FileBlockDevice device = FileBlockDevice.Open(loop.Path, 0, 512);
        Assert.Equal(4096, device.DirectIoAlignment);
        using var data = new AlignedBuffer(8 * 4096);
        DataPattern.Fill(data.Span, 0, seed: 3);
        Assert.Equal(BlockStatus.Success, await device.WriteAsync(0, data.Memory, fua: false));

        // One 512-byte block inside a 4 KiB sector: O_DIRECT would refuse it, so does fallocate.
        Assert.Equal(BlockStatus.Success, await device.WriteAsync(9, DataPattern.Create(512, 9 * 512, seed: 4), fua: true));
        Assert.Equal(BlockStatus.Success, await device.DeallocateAsync(3, 1));

        Assert.Equal(BlockStatus.Success, await device.ReadAsync(0, data.Memory));
        DataPattern.AssertMatches(data.Span[..(3 * 512)], 0, seed: 3);
        DataPattern.AssertZeroes(data.Span.Slice(3 * 512, 512));
        DataPattern.AssertMatches(data.Span.Slice(4 * 512, 5 * 512), 4 * 512, seed: 3);
        DataPattern.AssertMatches(data.Span.Slice(9 * 512, 512), 9 * 512, seed: 4);
        DataPattern.AssertMatches(data.Span[(10 * 512)..], 10 * 512, seed: 3);
    }
}

/// <summary>Steady-state I/O must not allocate, measured across all threads, so run alone.</summary>
[Collection(AllocationCollection.Name)]
public sealed class FileBlockDeviceAllocationTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    [Theory]
    [InlineData(false)] // io_uring where available
    [InlineData(true)]
    public async Task ReadAndWrite_AlignedBuffers_AllocateNothingPerRequest(bool threadPool)
    {
        await using FileBlockDevice device = FileBlockDevice.Open(_directory.File("allocation.img"), 4 * 1024 * 1024, 512, preferDirectIo: true,
            threadPool ? FileIoEngine.ThreadPool : FileIoEngine.Auto);
        using var buffer = new AlignedBuffer(4096);
        // On a pool thread there is no xunit synchronization context to post continuations to.
        await Task.Run(() => WriteAndReadAsync(device, buffer, requests: 100)); // warm up JIT and pools

        // Per-request allocations would show in every round (a 24-byte object per request is
        // 96 KB); the runtime's own background allocations come and go, so take the best round.
        const int Requests = 4000;
        long fewestBytes = long.MaxValue;
        for (int round = 0; round < 3; round++)
        {
            long before = GC.GetTotalAllocatedBytes(precise: true);
            int failures = await Task.Run(() => WriteAndReadAsync(device, buffer, Requests));
            long allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
            Assert.Equal(0, failures);
            fewestBytes = Math.Min(fewestBytes, allocated);
        }

        Assert.True(fewestBytes < 16 * 1024, $"{fewestBytes} bytes allocated for {Requests} requests in the best round.");
    }

    /// <summary>Checks without Assert, whose comparers allocate.</summary>
    private static async Task<int> WriteAndReadAsync(FileBlockDevice device, AlignedBuffer buffer, int requests)
    {
        int failures = 0;
        for (int i = 0; i < requests / 2; i++)
        {
            long lba = i % 1024 * 8;
            failures += await device.WriteAsync(lba, buffer.Memory, fua: false) == BlockStatus.Success ? 0 : 1;
            failures += await device.ReadAsync(lba, buffer.Memory) == BlockStatus.Success ? 0 : 1;
        }
        return failures;
    }
}
