using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using EdgeBlock.Nvme;
using EdgeBlock.Storage;

namespace EdgeBlock.Target;

/// <summary>NVM command set: the bridge from NVMe commands to <see cref="IBlockDevice"/> (nvmet's io-cmd-*.c).</summary>
internal static class IoCommands
{
    // SQE byte offsets of fields, for the error log's parameter error location.
    private const ushort NsidOffset = 4, SlbaOffset = 40, Cdw12Offset = 48;
    private const int DsmRangeSize = 16, MaxDsmRanges = 256;
    private const uint AllNamespaces = 0xFFFFFFFF;

    public static bool Parse(Controller controller, NvmeRequest request, TargetLimits limits)
    {
        var sqe = request.Sqe;
        var opcode = (NvmOpcode)sqe.Opcode;
        if (controller.IsDiscovery) return request.Fail(NvmeStatus.InvalidOpcode, 0);
        if (opcode == NvmOpcode.Flush && sqe.Nsid == AllNamespaces)
        {
            request.Kind = CommandKind.Flush;
            return true;
        }
        var ns = controller.Subsystem.FindNamespace(sqe.Nsid);
        if (ns == null) return request.Fail(NvmeStatus.InvalidNamespace, NsidOffset);
        request.Namespace = ns;
        request.StartTimestamp = System.Diagnostics.Stopwatch.GetTimestamp();
        if (sqe.Fuse != 0) return request.Fail(NvmeStatus.InvalidField, 1); // fused operations are not supported

        switch (opcode)
        {
            case NvmOpcode.Read:
                return ParseBlockRange(request, ns, limits, CommandKind.Read, DataDirection.ControllerToHost);
            case NvmOpcode.Write:
                return ParseBlockRange(request, ns, limits, CommandKind.Write, DataDirection.HostToController);
            case NvmOpcode.Compare:
                return ParseBlockRange(request, ns, limits, CommandKind.Compare, DataDirection.HostToController);
            case NvmOpcode.WriteZeroes:
                if (!InRange(ns, sqe.Slba, sqe.BlockCount)) return request.Fail(NvmeStatus.LbaOutOfRange, SlbaOffset);
                request.Kind = CommandKind.WriteZeroes;
                return true;
            case NvmOpcode.DatasetManagement:
                request.Kind = CommandKind.DatasetManagement;
                request.Direction = DataDirection.HostToController;
                request.DataLength = DsmRangeCount(sqe.Cdw10) * DsmRangeSize;
                request.MaxDataLength = MaxDsmRanges * DsmRangeSize;
                return true;
            case NvmOpcode.Flush:
                request.Kind = CommandKind.Flush;
                return true;
            default:
                return request.Fail(NvmeStatus.InvalidOpcode, 0);
        }
    }

    private static bool ParseBlockRange(NvmeRequest request, Namespace ns, TargetLimits limits, CommandKind kind, DataDirection direction)
    {
        var sqe = request.Sqe;
        if (!InRange(ns, sqe.Slba, sqe.BlockCount)) return request.Fail(NvmeStatus.LbaOutOfRange, SlbaOffset);
        long bytes = (long)sqe.BlockCount * ns.BlockSize;
        if (bytes > limits.MaxTransferBytes) return request.Fail(NvmeStatus.InvalidField, Cdw12Offset);
        request.Kind = kind;
        request.Direction = direction;
        request.DataLength = (int)bytes;
        return true;
    }

    /// <summary>NR (CDW10 7:0) is 0's based.</summary>
    private static int DsmRangeCount(uint cdw10) => (int)(cdw10 & 0xFF) + 1;

    private static bool InRange(Namespace ns, ulong slba, long blocks) =>
        slba < (ulong)ns.BlockCount && (ulong)blocks <= (ulong)ns.BlockCount - slba;

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public static async ValueTask ExecuteAsync(Controller controller, NvmeRequest request)
    {
        var ns = request.Namespace;
        long slba = (long)BinaryPrimitives.ReadUInt64LittleEndian(request.SqeBytes[40..]);
        uint cdw12 = BinaryPrimitives.ReadUInt32LittleEndian(request.SqeBytes[48..]);
        bool fua = (cdw12 & (1u << 30)) != 0 || !controller.VolatileWriteCacheEnabled;
        BlockStatus status;
        switch (request.Kind)
        {
            case CommandKind.Read:
                status = await ns!.Device.ReadAsync(slba, request.Data[..request.DataLength]).ConfigureAwait(false);
                Interlocked.Increment(ref ns.Counters.ReadCommands);
                Interlocked.Add(ref ns.Counters.BytesRead, request.DataLength);
                ns.Counters.ReadLatency.RecordSince(request.StartTimestamp);
                request.Status = StatusMapping.FromBlockStatus(status, isWrite: false);
                return;
            case CommandKind.Write:
                status = await ns!.Device.WriteAsync(slba, request.Data[..request.DataLength], fua).ConfigureAwait(false);
                Interlocked.Increment(ref ns.Counters.WriteCommands);
                Interlocked.Add(ref ns.Counters.BytesWritten, request.DataLength);
                ns.Counters.WriteLatency.RecordSince(request.StartTimestamp);
                request.Status = StatusMapping.FromBlockStatus(status, isWrite: true);
                return;
            case CommandKind.WriteZeroes:
                bool deallocate = (cdw12 & (1u << 25)) != 0;
                status = await ns!.Device.WriteZeroesAsync(slba, (cdw12 & 0xFFFF) + 1, deallocate).ConfigureAwait(false);
                if (status == BlockStatus.Success && fua) status = await ns.Device.FlushAsync().ConfigureAwait(false);
                request.Status = StatusMapping.FromBlockStatus(status, isWrite: true);
                break;
            case CommandKind.Flush:
                request.Status = await FlushAsync(controller, ns).ConfigureAwait(false);
                break;
            case CommandKind.DatasetManagement:
                request.Status = await DatasetManagementAsync(request, ns!).ConfigureAwait(false);
                break;
            case CommandKind.Compare:
                request.Status = await CompareAsync(request, ns!, slba).ConfigureAwait(false);
                break;
        }
        if (ns == null) return; // Flush of all namespaces
        Interlocked.Increment(ref ns.Counters.OtherCommands);
        ns.Counters.OtherLatency.RecordSince(request.StartTimestamp);
    }

    private static async ValueTask<NvmeStatus> FlushAsync(Controller controller, Namespace? ns)
    {
        if (ns != null) return StatusMapping.FromBlockStatus(await ns.Device.FlushAsync().ConfigureAwait(false), isWrite: true);
        foreach (var each in controller.Subsystem.Namespaces.Values)
        {
            var status = await each.Device.FlushAsync().ConfigureAwait(false);
            if (status != BlockStatus.Success) return StatusMapping.FromBlockStatus(status, isWrite: true);
        }
        return NvmeStatus.Success;
    }

    /// <summary>Deallocate (AD) frees each range; without AD the ranges are only hints and nothing happens.</summary>
    private static async ValueTask<NvmeStatus> DatasetManagementAsync(NvmeRequest request, Namespace ns)
    {
        bool deallocate = (request.Sqe.Cdw11 & (1u << 2)) != 0;
        if (!deallocate) return NvmeStatus.Success;
        int ranges = DsmRangeCount(request.Sqe.Cdw10);
        for (int i = 0; i < ranges; i++)
        {
            var range = request.Data.Span.Slice(i * DsmRangeSize, DsmRangeSize);
            uint blocks = BinaryPrimitives.ReadUInt32LittleEndian(range[4..]);
            ulong slba = BinaryPrimitives.ReadUInt64LittleEndian(range[8..]);
            if (blocks == 0) continue;
            if (!InRange(ns, slba, blocks)) return NvmeStatus.LbaOutOfRange;
        }
        for (int i = 0; i < ranges; i++)
        {
            uint blocks = BinaryPrimitives.ReadUInt32LittleEndian(request.Data.Span[(i * DsmRangeSize + 4)..]);
            long slba = (long)BinaryPrimitives.ReadUInt64LittleEndian(request.Data.Span[(i * DsmRangeSize + 8)..]);
            if (blocks == 0) continue;
            var status = await ns.Device.DeallocateAsync(slba, blocks).ConfigureAwait(false);
            if (status != BlockStatus.Success) return StatusMapping.FromBlockStatus(status, isWrite: true);
        }
        return NvmeStatus.Success;
    }

    private static async ValueTask<NvmeStatus> CompareAsync(NvmeRequest request, Namespace ns, long slba)
    {
        int length = request.DataLength;
        byte[] scratch = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            var status = await ns.Device.ReadAsync(slba, scratch.AsMemory(0, length)).ConfigureAwait(false);
            if (status != BlockStatus.Success) return StatusMapping.FromBlockStatus(status, isWrite: false);
            return scratch.AsSpan(0, length).SequenceEqual(request.Data.Span[..length]) ? NvmeStatus.Success : NvmeStatus.CompareFailure;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
        }
    }
}
