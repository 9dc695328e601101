using System.Buffers;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using static EdgeBlock.Interop.Native;

namespace EdgeBlock.Storage;

/// <summary>
/// A regular file or a raw block device (Linux only), the way nvmet's file backend serves one:
/// Deallocate punches holes, FUA is a write followed by fdatasync. Aligned transfers go through
/// an O_DIRECT descriptor, bypassing the page cache; the rest through a buffered one on the same
/// inode. Reads and writes of the O_DIRECT descriptor go through io_uring where the kernel allows it
/// (<see cref="UringFileIo"/>); the rest, and everything when io_uring is unavailable, runs on thread-pool
/// threads because the syscalls block.
/// </summary>
public sealed unsafe class FileBlockDevice : IBlockDevice
{
    /// <summary>Writing zeroes where the kernel cannot do it for us goes in bounded pieces.</summary>
    private const int ZeroChunkBytes = 1024 * 1024;

    /// <summary>Where the file system does not say (kernels before 6.1), a page is always aligned enough.</summary>
    private const int FallbackDirectIoAlignment = 4096;

    /// <summary>
    /// A child process forked while we had the file open keeps a copy of our descriptor, and
    /// so our claim on the file, until it execs (O_CLOEXEC closes it then). A file closed a
    /// moment ago can thus still look in use; such claims get this long to go away.
    /// </summary>
    private const int InUseGraceMs = 500;
    private const int InUseRetryMs = 10;

    private const int PunchHole = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
    private const int ZeroRange = FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;

    private readonly BlockGeometry _geometry;
    private readonly SafeFileHandle _buffered;
    private readonly SafeFileHandle? _direct;
    private readonly nuint _directAlignmentMask;
    private readonly FileIoOperationPool _operations;
    private readonly UringFileIo? _uring;

    // Learned at run time; a race between queues costs at most one extra refused syscall.
    private bool _punchHoleWorks;
    private bool _zeroRangeWorks = true;
    private volatile bool _disposed;

    private FileBlockDevice(string path, bool isBlockDevice, BlockGeometry geometry, SafeFileHandle buffered,
        SafeFileHandle? direct, int directIoAlignment, bool punchHoleWorks, FileIoEngine engine)
    {
        Path = path;
        IsBlockDevice = isBlockDevice;
        _geometry = geometry;
        _buffered = buffered;
        _direct = direct;
        DirectIoAlignment = direct is null ? 0 : directIoAlignment;
        _directAlignmentMask = direct is null ? 0 : (nuint)directIoAlignment - 1;
        _punchHoleWorks = punchHoleWorks;
        _operations = new FileIoOperationPool(this);
        if (direct is not null && engine != FileIoEngine.ThreadPool)
        {
            _uring = UringFileIo.TryCreate(this, direct, out int errno);
            if (_uring is null && engine == FileIoEngine.IoUring)
            {
                throw new NotSupportedException($"io_uring is not available: {Describe(errno)}");
            }
        }
    }

    /// <summary>
    /// The engine <see cref="Open(string, long, int)"/> picks: io_uring unless EDGEBLOCK_IO_URING=0 turns it
    /// off (say, to compare, or where a sandbox lets io_uring_setup succeed but then misbehaves).
    /// </summary>
    internal static FileIoEngine DefaultEngine =>
        Environment.GetEnvironmentVariable("EDGEBLOCK_IO_URING") is "0" or "off" or "false" ? FileIoEngine.ThreadPool : FileIoEngine.Auto;

    public string Path { get; }

    /// <summary>True for a raw block device, false for a regular file.</summary>
    public bool IsBlockDevice { get; }

    public int BlockSize => _geometry.BlockSize;

    public long BlockCount => _geometry.BlockCount;

    /// <summary>Whether punching holes (or the device's write-zeroes with unmap) works, so deallocation is cheap and frees space.</summary>
    public bool SupportsDeallocate => _punchHoleWorks;

    /// <summary>Whether an O_DIRECT descriptor is open; it serves transfers aligned to <see cref="DirectIoAlignment"/>.</summary>
    public bool UsesDirectIo => _direct is not null;

    /// <summary>Alignment of address, offset and length that O_DIRECT requires here; 0 without direct I/O.</summary>
    public int DirectIoAlignment { get; }

    internal FileIoOperationPool Operations => _operations;

    /// <summary>Whether reads and writes of the O_DIRECT descriptor go through io_uring.</summary>
    public bool UsesIoUring => _uring is not null;

    internal UringFileIo? Uring => _uring;

    /// <summary>
    /// Opens (or creates) a device. Errors here throw, naming the path and the problem; errors
    /// during I/O later are returned as <see cref="BlockStatus"/> values.
    /// </summary>
    /// <param name="path">A regular file (created sparse if missing) or a block device, opened exclusively.</param>
    /// <param name="sizeBytes">
    /// Size of the device. A smaller file is extended (sparsely); a larger file or block device
    /// exposes only its first sizeBytes. 0 takes the existing file's or block device's size.
    /// </param>
    /// <param name="blockSize">Logical block size: a power of two, usually 512 or 4096.</param>
    public static FileBlockDevice Open(string path, long sizeBytes, int blockSize = 512) =>
        Open(path, sizeBytes, blockSize, preferDirectIo: true, DefaultEngine);

    /// <summary>
    /// As <see cref="Open(string, long, int)"/>; without preferDirectIo only the buffered descriptor is used.
    /// engine IoUring insists on io_uring (NotSupportedException without it), ThreadPool never uses it.
    /// </summary>
    internal static FileBlockDevice Open(string path, long sizeBytes, int blockSize, bool preferDirectIo, FileIoEngine engine = FileIoEngine.Auto)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentOutOfRangeException.ThrowIfNegative(sizeBytes);
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("File and block-device backends are implemented for Linux only.");
        }
        // Validate before anything is created on disk; the real geometry is settled below.
        _ = new BlockGeometry(sizeBytes == 0 ? blockSize : sizeBytes, blockSize);

        SafeFileHandle buffered = OpenExclusive(path, sizeBytes, out StatX stat);
        SafeFileHandle? direct = null;
        try
        {
            BlockGeometry geometry = stat.IsBlockDevice
                ? SizeBlockDevice(path, buffered, sizeBytes, blockSize)
                : SizeFile(path, buffered, (long)stat.Size, sizeBytes, blockSize);
            int alignment = stat.IsBlockDevice ? LogicalBlockSize(path, buffered) : DirectIoAlignmentOf(stat);
            if (preferDirectIo && alignment > 0)
            {
                direct = TryReopenDirect(buffered);
            }
            bool punchHoleWorks = stat.IsBlockDevice
                ? BlockDeviceWritesZeroes(stat)
                : ProbePunchHole(buffered, Math.Max((long)stat.Size, geometry.SizeBytes), blockSize);
            return new FileBlockDevice(path, stat.IsBlockDevice, geometry, buffered, direct, alignment, punchHoleWorks, engine);
        }
        catch
        {
            direct?.Dispose();
            buffered.Dispose();
            throw;
        }
    }

    public ValueTask<BlockStatus> ReadAsync(long lba, Memory<byte> buffer) =>
        Submit(CheckTransfer(lba, buffer.Length), new FileIoRequest(FileIoKind.Read, lba * BlockSize, buffer.Length, buffer, Fua: false));

    public ValueTask<BlockStatus> WriteAsync(long lba, ReadOnlyMemory<byte> data, bool fua) =>
        Submit(CheckTransfer(lba, data.Length),
            new FileIoRequest(FileIoKind.Write, lba * BlockSize, data.Length, MemoryMarshal.AsMemory(data), fua));

    public ValueTask<BlockStatus> FlushAsync() =>
        Submit(_disposed ? BlockStatus.NotReady : BlockStatus.Success, new FileIoRequest(FileIoKind.Flush, 0, 0, default, Fua: false));

    public ValueTask<BlockStatus> WriteZeroesAsync(long lba, long blockCount, bool deallocate) =>
        Submit(CheckRange(lba, blockCount), new FileIoRequest(
            deallocate ? FileIoKind.Deallocate : FileIoKind.WriteZeroes, lba * BlockSize, blockCount * BlockSize, default, Fua: false));

    public ValueTask<BlockStatus> DeallocateAsync(long lba, long blockCount) =>
        Submit(CheckRange(lba, blockCount), new FileIoRequest(FileIoKind.Deallocate, lba * BlockSize, blockCount * BlockSize, default, Fua: false));

    /// <summary>
    /// Closes the descriptors. Requests still running keep them alive until their syscall
    /// returns (SafeHandle reference counts); later requests get NotReady.
    /// </summary>
    public ValueTask DisposeAsync()
    {
        _disposed = true;
        _uring?.Dispose();
        _direct?.Dispose();
        _buffered.Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>Whether a transfer qualifies for the O_DIRECT descriptor.</summary>
    internal bool IsDirectTransfer(void* address, long offset, long length) =>
        _direct is not null && (((nuint)address | (nuint)offset | (nuint)length) & _directAlignmentMask) == 0;

    /// <summary>Runs a request on the calling thread; called by <see cref="FileIoOperation"/> on a pool thread.</summary>
    internal BlockStatus Execute(in FileIoRequest request)
    {
        try
        {
            return request.Kind switch
            {
                FileIoKind.Read => Read(request.Offset, request.Buffer),
                FileIoKind.Write => Write(request.Offset, request.Buffer, request.Fua),
                FileIoKind.Flush => Sync(),
                FileIoKind.WriteZeroes => WriteZeroes(request.Offset, request.Length),
                FileIoKind.Deallocate => Deallocate(request.Offset, request.Length),
                _ => BlockStatus.InternalError,
            };
        }
        catch (Exception exception)
        {
            return ErrnoMapping.ToStatus(exception, request.Kind == FileIoKind.Read ? BlockStatus.ReadError : BlockStatus.WriteError);
        }
    }

    private ValueTask<BlockStatus> Submit(BlockStatus check, in FileIoRequest request)
    {
        if (check != BlockStatus.Success || (request.Kind != FileIoKind.Flush && request.Length == 0))
        {
            return new ValueTask<BlockStatus>(check);
        }
        if (_uring is not null && (request.Kind == FileIoKind.Read || (request.Kind == FileIoKind.Write && !request.Fua))
            && _uring.TryStart(in request, out ValueTask<BlockStatus> pending))
        {
            return pending;
        }
        return _operations.Rent().Start(request);
    }

    private BlockStatus CheckTransfer(long lba, int lengthBytes) =>
        _disposed ? BlockStatus.NotReady : _geometry.CheckTransfer(lba, lengthBytes);

    private BlockStatus CheckRange(long lba, long blockCount) =>
        _disposed ? BlockStatus.NotReady : _geometry.CheckRange(lba, blockCount);

    private BlockStatus Read(long offset, Memory<byte> buffer)
    {
        using MemoryHandle pin = buffer.Pin();
        byte* start = (byte*)pin.Pointer;
        int done = 0;
        while (done < buffer.Length)
        {
            // Chosen per pass: after a short read the rest may no longer be aligned.
            var rest = new Span<byte>(start + done, buffer.Length - done);
            int read = RandomAccess.Read(HandleFor(start + done, offset + done, rest.Length), rest, offset + done);
            if (read == 0)
            {
                // The file ends before the device does (someone truncated it): read a hole.
                rest.Clear();
                break;
            }
            done += read;
        }
        return BlockStatus.Success;
    }

    private BlockStatus Write(long offset, Memory<byte> data, bool fua)
    {
        using (MemoryHandle pin = data.Pin())
        {
            RandomAccess.Write(HandleFor(pin.Pointer, offset, data.Length), new ReadOnlySpan<byte>(pin.Pointer, data.Length), offset);
        }
        return fua ? Sync() : BlockStatus.Success;
    }

    /// <summary>
    /// fdatasync acts on the inode, which both descriptors share: it writes back pages the
    /// buffered descriptor dirtied, commits allocations O_DIRECT writes made, and flushes the
    /// drive's volatile cache for both. One call therefore covers everything written before.
    /// </summary>
    private BlockStatus Sync() => ErrnoMapping.ToStatus(Fdatasync(_buffered), BlockStatus.WriteError);

    private BlockStatus Deallocate(long offset, long length) =>
        TryFallocate(PunchHole, ref _punchHoleWorks, offset, length, out BlockStatus status) ? status : WriteZeroes(offset, length);

    /// <summary>Zeroes keeping the space allocated, as NVMe Write Zeroes without DEAC asks.</summary>
    private BlockStatus WriteZeroes(long offset, long length) =>
        TryFallocate(ZeroRange, ref _zeroRangeWorks, offset, length, out BlockStatus status) ? status : WriteZeroBuffers(offset, length);

    /// <summary>Tries fallocate; false when the kernel refused the request and the caller must fall back.</summary>
    private bool TryFallocate(int mode, ref bool supported, long offset, long length, out BlockStatus status)
    {
        status = BlockStatus.Success;
        if (!supported)
        {
            return false;
        }
        int errno = Fallocate(_buffered, mode, offset, length);
        switch (errno)
        {
            case EOPNOTSUPP:
                // The file system or device never will: stop asking.
                supported = false;
                return false;
            case EINVAL:
                // E.g. a range finer than a block device's logical block: only this request falls back.
                return false;
            default:
                status = ErrnoMapping.ToStatus(errno, BlockStatus.WriteError);
                return true;
        }
    }

    private BlockStatus WriteZeroBuffers(long offset, long length)
    {
        Memory<byte> zeroes = SharedZeroes.Buffer.Memory;
        for (long done = 0; done < length;)
        {
            int piece = (int)Math.Min(ZeroChunkBytes, length - done);
            BlockStatus status = Write(offset + done, zeroes[..piece], fua: false);
            if (status != BlockStatus.Success)
            {
                return status;
            }
            done += piece;
        }
        return BlockStatus.Success;
    }

    private SafeFileHandle HandleFor(void* address, long offset, long length) =>
        IsDirectTransfer(address, offset, length) ? _direct! : _buffered;

    private static SafeFileHandle OpenExclusive(string path, long sizeBytes, out StatX stat)
    {
        int errno = Stat(path, STATX_TYPE, out StatX existing);
        if (errno != 0 && sizeBytes == 0)
        {
            throw errno == ENOENT
                ? new FileNotFoundException($"Cannot open '{path}': it does not exist; give a size to create it.", path)
                : OpenError(path, Describe(errno));
        }

        bool isBlockDevice = errno == 0 && existing.IsBlockDevice;
        SafeFileHandle handle;
        long giveUpAtMs = Environment.TickCount64 + InUseGraceMs;
        while ((errno = OpenAndClaim(path, isBlockDevice, out handle)) is EBUSY or EWOULDBLOCK
            && Environment.TickCount64 < giveUpAtMs)
        {
            Thread.Sleep(InUseRetryMs);
        }
        if (errno != 0)
        {
            throw OpenError(path, errno switch
            {
                EBUSY => "the block device is in use (mounted, or claimed by another program).",
                EWOULDBLOCK => "another device (in this or another process) has it open; close that one first.",
                _ => Describe(errno),
            });
        }

        try
        {
            errno = Stat(handle, STATX_BASIC | STATX_DIOALIGN, out stat);
            if (errno != 0)
            {
                throw OpenError(path, Describe(errno));
            }
            if (!stat.IsRegularFile && !stat.IsBlockDevice)
            {
                throw OpenError(path, "it is neither a regular file nor a block device.");
            }
            return handle;
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Opens the path and claims it for this device alone. O_EXCL claims a block device: the
    /// kernel refuses (EBUSY) while it is mounted or claimed by another program. A regular file
    /// (created if missing) gets an exclusive flock instead (EWOULDBLOCK when already held).
    /// </summary>
    private static int OpenAndClaim(string path, bool isBlockDevice, out SafeFileHandle handle)
    {
        int errno = Native.Open(path, O_RDWR | O_CLOEXEC | (isBlockDevice ? O_EXCL : O_CREAT), out handle);
        if (errno == 0 && !isBlockDevice)
        {
            errno = LockExclusive(handle);
        }
        if (errno != 0)
        {
            handle.Dispose();
        }
        return errno;
    }

    private static BlockGeometry SizeBlockDevice(string path, SafeFileHandle handle, long sizeBytes, int blockSize)
    {
        int errno = GetBlockDeviceSize(handle, out ulong deviceBytes);
        if (errno != 0)
        {
            throw OpenError(path, $"cannot read the block device's size: {Describe(errno)}");
        }
        if (sizeBytes > (long)deviceBytes)
        {
            throw OpenError(path, $"the block device holds {deviceBytes} bytes, less than the {sizeBytes} requested.");
        }
        return Geometry(path, sizeBytes == 0 ? (long)deviceBytes : sizeBytes, blockSize);
    }

    private static BlockGeometry SizeFile(string path, SafeFileHandle handle, long fileBytes, long sizeBytes, int blockSize)
    {
        if (sizeBytes > fileBytes)
        {
            try
            {
                // Extending with ftruncate leaves a hole: nothing is written or reserved.
                RandomAccess.SetLength(handle, sizeBytes);
            }
            catch (IOException e)
            {
                throw OpenError(path, $"cannot extend it to {sizeBytes} bytes: {e.Message}", e);
            }
        }
        return Geometry(path, sizeBytes == 0 ? fileBytes : sizeBytes, blockSize);
    }

    /// <summary>Whole blocks only: a trailing partial block of an existing file or device is not exposed.</summary>
    private static BlockGeometry Geometry(string path, long bytes, int blockSize)
    {
        long usable = bytes - bytes % blockSize;
        if (usable == 0)
        {
            throw OpenError(path, $"it holds {bytes} bytes, less than one {blockSize}-byte block; give a size to extend it.");
        }
        return new BlockGeometry(usable, blockSize);
    }

    private static int LogicalBlockSize(string path, SafeFileHandle handle)
    {
        int errno = GetLogicalBlockSize(handle, out int logicalBlockSize);
        if (errno != 0)
        {
            throw OpenError(path, $"cannot read the block device's logical block size: {Describe(errno)}");
        }
        return logicalBlockSize;
    }

    /// <summary>What statx says O_DIRECT needs on this file system; 0 when it does not support it.</summary>
    private static int DirectIoAlignmentOf(in StatX stat)
    {
        if ((stat.Mask & STATX_DIOALIGN) == 0)
        {
            return FallbackDirectIoAlignment;
        }
        return stat.DioOffsetAlign == 0 ? 0 : (int)Math.Max(stat.DioOffsetAlign, stat.DioMemAlign);
    }

    /// <summary>
    /// Reopens the same inode with O_DIRECT through /proc/self/fd, so it cannot be a different
    /// file if the path was replaced meanwhile. Direct I/O is an optimization: any refusal
    /// (tmpfs on old kernels says EINVAL) leaves the buffered descriptor alone in charge.
    /// </summary>
    private static SafeFileHandle? TryReopenDirect(SafeFileHandle buffered)
    {
        if (O_DIRECT == 0)
        {
            return null;
        }
        string self = $"/proc/self/fd/{buffered.DangerousGetHandle()}";
        if (Native.Open(self, O_RDWR | O_CLOEXEC | O_DIRECT, out SafeFileHandle direct) == 0)
        {
            return direct;
        }
        direct.Dispose();
        return null;
    }

    /// <summary>Punches a block past the end of the file: harmless, and refused where holes are unsupported.</summary>
    private static bool ProbePunchHole(SafeFileHandle handle, long endOfFile, int blockSize) =>
        Fallocate(handle, PunchHole, endOfFile, blockSize) == 0;

    /// <summary>
    /// A block device "punches holes" with write-zeroes-with-unmap, which only exists when the
    /// device advertises write zeroes; its queue (the parent disk's, for a partition) says so.
    /// </summary>
    private static bool BlockDeviceWritesZeroes(in StatX stat)
    {
        string device = $"/sys/dev/block/{stat.RdevMajor}:{stat.RdevMinor}";
        foreach (string queue in (ReadOnlySpan<string>)[$"{device}/queue", $"{device}/../queue"])
        {
            string attribute = $"{queue}/write_zeroes_max_bytes";
            if (File.Exists(attribute))
            {
                return long.TryParse(File.ReadAllText(attribute).Trim(), out long maxBytes) && maxBytes > 0;
            }
        }
        return false;
    }

    private static IOException OpenError(string path, string problem, Exception? inner = null) =>
        new($"Cannot open '{path}': {problem}", inner);

    /// <summary>Zeroes to write where the kernel cannot zero a range itself; only ever read from.</summary>
    private static class SharedZeroes
    {
        public static readonly AlignedBuffer Buffer = new(ZeroChunkBytes);
    }
}
