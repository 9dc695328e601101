using EdgeBlock.Storage;

namespace EdgeBlock.Transports.Ublk.Tests;

/// <summary>A request descriptor mapped to the block device, and the result its commit carries.</summary>
public class UblkIoTests
{
    private sealed class Completions : ITagCompletion
    {
        public readonly List<(int Tag, bool Inline)> Ended = [];
        public readonly SemaphoreSlim Signal = new(0);

        public void Complete(int tag, bool inline)
        {
            lock (Ended) Ended.Add((tag, inline));
            Signal.Release();
        }
    }

    /// <summary>Completes every operation later, on the thread pool: the path where the queue is woken from another thread.</summary>
    private sealed class LateDevice(IBlockDevice inner) : IBlockDevice
    {
        public int BlockSize => inner.BlockSize;
        public long BlockCount => inner.BlockCount;
        public bool SupportsDeallocate => inner.SupportsDeallocate;
        public bool LastFua { get; private set; }
        public ValueTask<BlockStatus> ReadAsync(long lba, Memory<byte> buffer) => Later(() => inner.ReadAsync(lba, buffer));
        public ValueTask<BlockStatus> WriteAsync(long lba, ReadOnlyMemory<byte> data, bool fua)
        {
            LastFua = fua;
            return Later(() => inner.WriteAsync(lba, data, fua));
        }
        public ValueTask<BlockStatus> FlushAsync() => Later(inner.FlushAsync);
        public ValueTask<BlockStatus> WriteZeroesAsync(long lba, long blockCount, bool deallocate) => Later(() => inner.WriteZeroesAsync(lba, blockCount, deallocate));
        public ValueTask<BlockStatus> DeallocateAsync(long lba, long blockCount) => Later(() => inner.DeallocateAsync(lba, blockCount));
        public ValueTask DisposeAsync() => inner.DisposeAsync();

        private static async ValueTask<BlockStatus> Later(Func<ValueTask<BlockStatus>> op)
        {
            await Task.Delay(1);
            return await op();
        }
    }

    private static UblkAbi.IoDesc Desc(byte op, long sector, uint sectors, uint flags = 0) =>
        new() { OpFlags = op | flags, StartSector = (ulong)sector, NrSectors = sectors };

    [Fact]
    public async Task WriteThenRead_RoundTripsThroughTheTagBuffer_ResultIsTheByteCount()
    {
        await using var device = new MemoryBlockDevice(1 << 20, 4096);
        var done = new Completions();
        var buffer = new byte[128 * 1024];
        var io = new UblkIo(done, 5, device, buffer, readOnly: false);

        buffer.AsSpan(0, 8192).Fill(0xA5);
        io.Start(Desc(UblkAbi.OpWrite, 16, 16)); // 8 KiB at byte 8 KiB: LBA 2
        Assert.Equal(8192, io.Result);
        buffer.AsSpan().Clear();
        io.Start(Desc(UblkAbi.OpRead, 16, 16));
        Assert.Equal(8192, io.Result);
        Assert.True(buffer.AsSpan(0, 8192).IndexOfAnyExcept((byte)0xA5) < 0);
        Assert.Equal([(5, true), (5, true)], done.Ended);
    }

    [Fact]
    public async Task FlushDiscardWriteZeroes_CommitZero_AndDiscardedBlocksReadZero()
    {
        await using var device = new MemoryBlockDevice(1 << 20, 4096);
        var done = new Completions();
        var buffer = new byte[64 * 1024];
        var io = new UblkIo(done, 0, device, buffer, readOnly: false);
        buffer.AsSpan(0, 16384).Fill(1);
        io.Start(Desc(UblkAbi.OpWrite, 0, 32));

        io.Start(Desc(UblkAbi.OpFlush, -1, 0)); // the kernel's flush request has sector -1
        Assert.Equal(0, io.Result);
        io.Start(Desc(UblkAbi.OpDiscard, 0, 8));
        Assert.Equal(0, io.Result);
        io.Start(Desc(UblkAbi.OpWriteZeroes, 8, 8, UblkAbi.IoFlagNoUnmap));
        Assert.Equal(0, io.Result);
        io.Start(Desc(UblkAbi.OpRead, 0, 32));
        Assert.True(buffer.AsSpan(0, 8192).IndexOfAnyExcept((byte)0) < 0, "discarded and zeroed blocks read as zeroes");
        Assert.True(buffer.AsSpan(8192, 8192).IndexOfAnyExcept((byte)1) < 0, "the blocks after them are intact");
    }

    [Fact]
    public async Task Refusals_AreNegativeErrnos()
    {
        await using var device = new MemoryBlockDevice(1 << 20, 4096);
        var done = new Completions();
        var io = new UblkIo(done, 0, device, new byte[8192], readOnly: false);
        var ro = new UblkIo(done, 1, device, new byte[8192], readOnly: true);

        io.Start(Desc(UblkAbi.OpRead, 1, 8)); // not on a 4 KiB block boundary
        Assert.Equal(-22, io.Result);
        io.Start(Desc(UblkAbi.OpRead, 0, 32)); // 16 KiB into an 8 KiB buffer
        Assert.Equal(-22, io.Result);
        io.Start(Desc(UblkAbi.OpRead, 2048, 8)); // past the end
        Assert.Equal(-22, io.Result);
        io.Start(Desc(UblkAbi.OpWriteSame, 0, 8));
        Assert.Equal(-95, io.Result);
        ro.Start(Desc(UblkAbi.OpWrite, 0, 8));
        Assert.Equal(-30, ro.Result);
        ro.Start(Desc(UblkAbi.OpDiscard, 0, 8));
        Assert.Equal(-30, ro.Result);
        ro.Start(Desc(UblkAbi.OpRead, 0, 8));
        Assert.Equal(4096, ro.Result);
    }

    [Fact]
    public async Task LateCompletion_IsReportedNotInline_WithTheFuaFlagPassedOn()
    {
        await using var device = new LateDevice(new MemoryBlockDevice(1 << 20, 4096));
        var done = new Completions();
        var io = new UblkIo(done, 3, device, new byte[4096], readOnly: false);

        io.Start(Desc(UblkAbi.OpWrite, 0, 8, UblkAbi.IoFlagFua));
        Assert.True(await done.Signal.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal([(3, false)], done.Ended);
        Assert.Equal(4096, io.Result);
        Assert.True(device.LastFua);
    }
}
