using System.Buffers;
using System.Runtime.CompilerServices;
using EdgeBlock.Nvme;
using EdgeBlock.Storage;

namespace EdgeBlock.Target;

/// <summary>
/// NVM command set: the bridge from NVMe commands to <see cref="IBlockDevice"/> (nvmet's io-cmd-*.c).
/// <see cref="NvmeTarget"/> resolved the namespace before an entry's Parse runs, and admits the
/// command to the namespace's device around its Execute.
/// </summary>
internal static class IoCommands
{
    public static readonly NvmeCommand[] Entries =
    [
        new() { Code = (byte)NvmOpcode.Flush, Name = "Flush", Parse = NvmeCommand.NoData, Execute = FlushAsync },
        new()
        {
            Code = (byte)NvmOpcode.Write, Name = "Write", Effects = CommandEffects.LogicalBlockContentChange,
            Parse = static (q, r) => ParseBlockRange(q, r, DataDirection.HostToController), Execute = TransferAsync,
        },
        new()
        {
            Code = (byte)NvmOpcode.Read, Name = "Read",
            Parse = static (q, r) => ParseBlockRange(q, r, DataDirection.ControllerToHost), Execute = TransferAsync,
        },
        new()
        {
            Code = (byte)NvmOpcode.Compare, Name = "Compare", Oncs = OptionalNvmCommands.Compare,
            Parse = static (q, r) => ParseBlockRange(q, r, DataDirection.HostToController), Execute = static (_, r) => CountedAsync(r, CompareAsync),
        },
        new()
        {
            Code = (byte)NvmOpcode.WriteZeroes, Name = "Write Zeroes", Effects = CommandEffects.LogicalBlockContentChange,
            Oncs = OptionalNvmCommands.WriteZeroes, Parse = ParseWriteZeroes, Execute = WriteZeroesAsync,
        },
        new()
        {
            Code = (byte)NvmOpcode.DatasetManagement, Name = "Dataset Management", Effects = CommandEffects.LogicalBlockContentChange,
            Oncs = OptionalNvmCommands.DatasetManagement, Parse = ParseDatasetManagement, Execute = static (_, r) => CountedAsync(r, DeallocateRangesAsync),
        },
    ];

    /// <summary>True for the commands whose SLBA the error log reports.</summary>
    public static bool HasLba(byte opcode) => (NvmOpcode)opcode is NvmOpcode.Read or NvmOpcode.Write or NvmOpcode.Compare;

    // ---- Parse ------------------------------------------------------------------

    private static bool ParseBlockRange(QueuePair queue, NvmeRequest request, DataDirection direction)
    {
        var sqe = request.Sqe;
        var ns = request.Namespace!;
        if (!InRange(ns, sqe.Slba, sqe.BlockCount)) return request.Fail(NvmeStatus.LbaOutOfRange, SqeOffset.Slba);
        long bytes = (long)sqe.BlockCount * ns.BlockSize;
        if (bytes > queue.Target.Limits.MaxTransferBytes) return request.Fail(NvmeStatus.InvalidField, SqeOffset.Cdw12);
        return request.Accept(direction, (int)bytes);
    }

    private static bool ParseWriteZeroes(QueuePair queue, NvmeRequest request)
    {
        var sqe = request.Sqe;
        return InRange(request.Namespace!, sqe.Slba, sqe.BlockCount) || request.Fail(NvmeStatus.LbaOutOfRange, SqeOffset.Slba);
    }

    private static bool ParseDatasetManagement(QueuePair queue, NvmeRequest request)
    {
        // Linux always sends a 4 KiB range buffer whatever NR says, as nvmet accepts.
        request.MaxDataLength = DsmRange.MaxRanges * DsmRange.Size;
        return request.Accept(DataDirection.HostToController, request.Sqe.DsmRangeCount * DsmRange.Size);
    }

    private static bool InRange(Namespace ns, ulong slba, long blocks) =>
        slba < (ulong)ns.BlockCount && (ulong)blocks <= (ulong)ns.BlockCount - slba;

    // ---- Execute ----------------------------------------------------------------

    /// <summary>FUA on the command, or no volatile write cache to hide behind (the host turned it off).</summary>
    private static bool ForceUnitAccess(QueuePair queue, in SubmissionQueueEntry sqe) => sqe.Fua || !queue.Controller!.VolatileWriteCacheEnabled;

    /// <summary>Read or Write (by the direction Parse set): one device call, counted with its bytes and latency.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private static async ValueTask TransferAsync(QueuePair queue, NvmeRequest request)
    {
        var ns = request.Namespace!;
        var c = ns.Counters;
        long slba = (long)request.Sqe.Slba;
        var data = request.Data[..request.DataLength];
        bool write = request.Direction == DataDirection.HostToController;
        var status = write
            ? await ns.Device.WriteAsync(slba, data, ForceUnitAccess(queue, request.Sqe)).ConfigureAwait(false)
            : await ns.Device.ReadAsync(slba, data).ConfigureAwait(false);
        if (write) CountTransfer(request, ref c.WriteCommands, ref c.BytesWritten, c.WriteLatency);
        else CountTransfer(request, ref c.ReadCommands, ref c.BytesRead, c.ReadLatency);
        request.Status = StatusMapping.FromBlockStatus(status, isWrite: write);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private static async ValueTask WriteZeroesAsync(QueuePair queue, NvmeRequest request)
    {
        var ns = request.Namespace!;
        bool fua = ForceUnitAccess(queue, request.Sqe);
        var status = await ns.Device.WriteZeroesAsync((long)request.Sqe.Slba, request.Sqe.BlockCount, request.Sqe.WriteZeroesDeallocate).ConfigureAwait(false);
        if (status == BlockStatus.Success && fua) status = await ns.Device.FlushAsync().ConfigureAwait(false);
        request.Status = StatusMapping.FromBlockStatus(status, isWrite: true);
        CountOther(request);
    }

    /// <summary>Flush of one namespace, or with NSID FFFFFFFFh of every namespace of the subsystem.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private static async ValueTask FlushAsync(QueuePair queue, NvmeRequest request)
    {
        if (request.Namespace is { } ns)
        {
            request.Status = StatusMapping.FromBlockStatus(await ns.Device.FlushAsync().ConfigureAwait(false), isWrite: true);
            CountOther(request);
            return;
        }
        foreach (var each in queue.Controller!.Subsystem.Namespaces.Values)
        {
            if (!each.TryEnter()) continue; // being removed: its teardown flushes it
            BlockStatus status;
            try
            {
                status = await each.Device.FlushAsync().ConfigureAwait(false);
            }
            finally
            {
                each.Exit();
            }
            if (status == BlockStatus.Success) continue;
            request.Status = StatusMapping.FromBlockStatus(status, isWrite: true);
            return;
        }
    }

    /// <summary>Runs a command counted as "other" (Dataset Management, Compare) and records its status.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private static async ValueTask CountedAsync(NvmeRequest request, Func<NvmeRequest, ValueTask<NvmeStatus>> run)
    {
        request.Status = await run(request).ConfigureAwait(false);
        CountOther(request);
    }

    /// <summary>Deallocate (AD) frees each range; without AD the ranges are only hints and nothing happens.</summary>
    private static async ValueTask<NvmeStatus> DeallocateRangesAsync(NvmeRequest request)
    {
        var ns = request.Namespace!;
        if (!request.Sqe.DsmDeallocate) return NvmeStatus.Success;
        int ranges = request.Sqe.DsmRangeCount;
        // Check every range before freeing any, so a bad list changes nothing.
        for (int i = 0; i < ranges; i++)
        {
            var range = DsmRange.At(request.Data.Span, i);
            if (range.BlockCount != 0 && !InRange(ns, range.Slba, range.BlockCount)) return NvmeStatus.LbaOutOfRange;
        }
        for (int i = 0; i < ranges; i++)
        {
            var (slba, blocks) = Range(request, i);
            if (blocks == 0) continue;
            var status = await ns.Device.DeallocateAsync(slba, blocks).ConfigureAwait(false);
            if (status != BlockStatus.Success) return StatusMapping.FromBlockStatus(status, isWrite: true);
        }
        return NvmeStatus.Success;
    }

    // A ref struct cannot live across an await: copy the fields out.
    private static (long Slba, uint Blocks) Range(NvmeRequest request, int i)
    {
        var range = DsmRange.At(request.Data.Span, i);
        return ((long)range.Slba, range.BlockCount);
    }

    private static async ValueTask<NvmeStatus> CompareAsync(NvmeRequest request)
    {
        var ns = request.Namespace!;
        int length = request.DataLength;
        byte[] scratch = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            var status = await ns.Device.ReadAsync((long)request.Sqe.Slba, scratch.AsMemory(0, length)).ConfigureAwait(false);
            if (status != BlockStatus.Success) return StatusMapping.FromBlockStatus(status, isWrite: false);
            return scratch.AsSpan(0, length).SequenceEqual(request.Data.Span[..length]) ? NvmeStatus.Success : NvmeStatus.CompareFailure;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
        }
    }

    /// <summary>A read or write counts once with its bytes and its latency (shared by all queues: Interlocked).</summary>
    private static void CountTransfer(NvmeRequest request, ref long commands, ref long bytes, LatencyHistogram latency)
    {
        Interlocked.Increment(ref commands);
        Interlocked.Add(ref bytes, request.DataLength);
        latency.RecordSince(request.StartTimestamp);
    }

    /// <summary>Flush, Write Zeroes, Dataset Management and Compare count as "other" commands of their namespace.</summary>
    private static void CountOther(NvmeRequest request)
    {
        var ns = request.Namespace!;
        Interlocked.Increment(ref ns.Counters.OtherCommands);
        ns.Counters.OtherLatency.RecordSince(request.StartTimestamp);
    }
}
