using System.Runtime.CompilerServices;
using EdgeBlock.Storage;

namespace EdgeBlock.Transports.Ublk;

/// <summary>
/// One tag of a queue: the request the driver handed over under it, run against the <see cref="IBlockDevice"/>,
/// and its result until the queue's thread commits it. Made once per tag with its own buffer and continuation,
/// so a request allocates nothing. Not reentrant: the driver gives a tag a new request only after its commit.
/// </summary>
internal sealed class UblkIo
{
    private readonly ITagCompletion _queue;
    private readonly IBlockDevice _device;
    private readonly Memory<byte> _buffer;
    private readonly int _blockShift;
    private readonly bool _readOnly;
    private readonly Action _onCompleted;
    private ValueTaskAwaiter<BlockStatus> _awaiter;
    private int _successResult;

    public UblkIo(ITagCompletion queue, int tag, IBlockDevice device, Memory<byte> buffer, bool readOnly)
    {
        _queue = queue;
        Tag = tag;
        _device = device;
        _buffer = buffer;
        _blockShift = System.Numerics.BitOperations.Log2((uint)device.BlockSize);
        _readOnly = readOnly;
        _onCompleted = OnCompleted;
    }

    public int Tag { get; }

    /// <summary>What COMMIT_AND_FETCH reports: bytes transferred, 0 for flush/discard, or a negative errno.</summary>
    public int Result { get; private set; }

    public byte Op { get; private set; }

    /// <summary>Starts the request in <paramref name="desc"/>; the queue hears of its end through <see cref="ITagCompletion.Complete"/>.</summary>
    public void Start(in UblkAbi.IoDesc desc)
    {
        Op = desc.Op;
        try
        {
            Dispatch(desc);
        }
        catch (Exception)
        {
            // IBlockDevice reports media errors as values; a throw is a bug, which must still end the request.
            Finish(-Native.EIO, inline: true);
        }
    }

    private void Dispatch(in UblkAbi.IoDesc desc)
    {
        if (Op == UblkAbi.OpFlush)
        {
            // A flush has no range: the block layer's flush request carries sector -1 (blk_rq_init), not a position.
            Await(_device.FlushAsync(), 0);
            return;
        }
        long offset = (long)desc.StartSector << UblkAbi.SectorShift;
        long bytes = (long)desc.NrSectors << UblkAbi.SectorShift;
        long blockMask = (1L << _blockShift) - 1;
        if ((offset & blockMask) != 0 || (bytes & blockMask) != 0)
        {
            Finish(-Native.EINVAL, inline: true); // the kernel honours logical_bs_shift; this would be its bug or ours
            return;
        }
        long lba = offset >> _blockShift;
        long blocks = bytes >> _blockShift;
        if (Op is UblkAbi.OpWrite or UblkAbi.OpDiscard or UblkAbi.OpWriteZeroes && _readOnly)
        {
            Finish(-Native.EROFS, inline: true);
            return;
        }
        if (Op is UblkAbi.OpRead or UblkAbi.OpWrite && bytes > _buffer.Length)
        {
            Finish(-Native.EINVAL, inline: true); // larger than max_sectors, which we told the kernel
            return;
        }
        switch (Op)
        {
            case UblkAbi.OpRead:
                Await(_device.ReadAsync(lba, _buffer[..(int)bytes]), (int)bytes);
                break;
            case UblkAbi.OpWrite:
                Await(_device.WriteAsync(lba, _buffer[..(int)bytes], fua: (desc.OpFlags & UblkAbi.IoFlagFua) != 0), (int)bytes);
                break;
            case UblkAbi.OpDiscard:
                Await(_device.DeallocateAsync(lba, blocks), 0);
                break;
            case UblkAbi.OpWriteZeroes:
                Await(_device.WriteZeroesAsync(lba, blocks, deallocate: (desc.OpFlags & UblkAbi.IoFlagNoUnmap) == 0), 0);
                break;
            default:
                Finish(-Native.EOPNOTSUPP, inline: true);
                break;
        }
    }

    private void Await(ValueTask<BlockStatus> task, int successResult)
    {
        _successResult = successResult;
        if (task.IsCompleted)
        {
            Finish(UblkErrno.Result(task.GetAwaiter().GetResult(), successResult), inline: true);
            return;
        }
        _awaiter = task.GetAwaiter();
        _awaiter.UnsafeOnCompleted(_onCompleted);
    }

    private void OnCompleted()
    {
        BlockStatus status;
        try
        {
            status = _awaiter.GetResult();
        }
        catch (Exception)
        {
            status = BlockStatus.InternalError;
        }
        _awaiter = default;
        Finish(UblkErrno.Result(status, _successResult), inline: false);
    }

    private void Finish(int result, bool inline)
    {
        Result = result;
        _queue.Complete(Tag, inline);
    }
}

/// <summary>Where a tag's end is reported: its queue, which commits it from its own thread.</summary>
internal interface ITagCompletion
{
    /// <param name="inline">True when the request ended inside <see cref="UblkIo.Start"/> (on the queue's thread).</param>
    void Complete(int tag, bool inline);
}
