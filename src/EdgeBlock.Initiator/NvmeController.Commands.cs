using System.Buffers.Binary;
using EdgeBlock.Nvme;

namespace EdgeBlock.Initiator;

public sealed partial class NvmeController
{
    // ---- raw --------------------------------------------------------------------------

    /// <summary>Sends any SQE on queue <paramref name="qid"/> (0 = admin) and returns its completion.</summary>
    public ValueTask<NvmeCompletion> SubmitAsync(ushort qid, ReadOnlySpan<byte> sqe, Memory<byte> data = default, TransferDirection direction = TransferDirection.None) =>
        QueueById(qid).SubmitAsync(sqe, data, direction);

    private NvmeTcpQueue QueueById(ushort qid)
    {
        if (qid == 0) return _admin;
        if (qid > _io.Length) throw new ArgumentOutOfRangeException(nameof(qid), qid, $"the controller has {_io.Length} I/O queues");
        return _io[qid - 1];
    }

    /// <summary>I/O queue <paramref name="qid"/>, or the next one round robin when qid is 0.</summary>
    private NvmeTcpQueue IoQueue(ushort qid)
    {
        if (_io.Length == 0) throw new InvalidOperationException($"{this} has no I/O queues");
        if (qid != 0) return QueueById(qid);
        uint next = (uint)Interlocked.Increment(ref _nextQueue);
        return _io[next % (uint)_io.Length];
    }

    // ---- fabrics ------------------------------------------------------------------------

    /// <summary>Property Get; the value is in <see cref="NvmeCompletion.Result"/>.</summary>
    public ValueTask<NvmeCompletion> PropertyGetAsync(uint offset, bool wide = false)
    {
        Span<byte> sqe = stackalloc byte[SubmissionQueueEntry.Size];
        NvmeCommands.PropertyGet(sqe, offset, wide);
        return _admin.SubmitAsync(sqe);
    }

    public ValueTask<NvmeCompletion> PropertySetAsync(uint offset, ulong value, bool wide = false)
    {
        Span<byte> sqe = stackalloc byte[SubmissionQueueEntry.Size];
        NvmeCommands.PropertySet(sqe, offset, value, wide);
        return _admin.SubmitAsync(sqe);
    }

    /// <summary>Normal shutdown: CC.SHN = 01b, then wait for CSTS.SHST = 10b (shutdown complete).</summary>
    public async Task<NvmeCompletion> ShutdownAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var cc = await PropertyGetAsync(ControllerProperties.Cc).ConfigureAwait(false);
        if (!cc.IsSuccess) return cc;
        var c = await PropertySetAsync(ControllerProperties.Cc, cc.Dw0 & ~(3u << 14) | ControllerProperties.CcShutdownNormal).ConfigureAwait(false);
        if (!c.IsSuccess) return c;
        return await WaitForStatusAsync(0xCu, ControllerProperties.CstsShutdownComplete, timeout ?? TimeSpan.FromSeconds(5), "CSTS.SHST = shutdown complete", cancellationToken).ConfigureAwait(false);
    }

    // ---- admin ------------------------------------------------------------------------------

    public async Task<NvmeResult<IdentifyControllerData>> IdentifyControllerAsync()
    {
        var page = new byte[IdentifyControllerData.Size];
        var c = await IdentifyAsync(IdentifyCns.Controller, 0, page).ConfigureAwait(false);
        return new(c, c.IsSuccess ? IdentifyControllerReader.Parse(page) : null);
    }

    public async Task<NvmeResult<NamespaceInfo>> IdentifyNamespaceAsync(uint nsid)
    {
        var page = new byte[IdentifyNamespaceData.Size];
        var c = await IdentifyAsync(IdentifyCns.Namespace, nsid, page).ConfigureAwait(false);
        return new(c, c.IsSuccess ? NamespaceInfo.Parse(page) : null);
    }

    /// <summary>Active NSIDs above <paramref name="after"/> (CNS 02h), at most 1024.</summary>
    public async Task<NvmeResult<uint[]>> IdentifyActiveNamespacesAsync(uint after = 0)
    {
        var page = new byte[4096];
        var c = await IdentifyAsync(IdentifyCns.ActiveNamespaceList, after, page).ConfigureAwait(false);
        if (!c.IsSuccess) return new(c, null);
        var list = new List<uint>();
        for (int i = 0; i < page.Length; i += 4)
        {
            uint nsid = BinaryPrimitives.ReadUInt32LittleEndian(page.AsSpan(i));
            if (nsid == 0) break;
            list.Add(nsid);
        }
        return new(c, [.. list]);
    }

    public ValueTask<NvmeCompletion> IdentifyAsync(IdentifyCns cns, uint nsid, Memory<byte> page)
    {
        Span<byte> sqe = stackalloc byte[SubmissionQueueEntry.Size];
        NvmeCommands.Identify(sqe, cns, nsid);
        return _admin.SubmitAsync(sqe, page, TransferDirection.ControllerToHost);
    }

    /// <summary>Reads buffer.Length bytes (a multiple of 4) of a log page starting at <paramref name="offset"/>.</summary>
    public ValueTask<NvmeCompletion> GetLogPageAsync(LogPageId lid, Memory<byte> buffer, ulong offset = 0, bool retainAsyncEvent = false, uint nsid = NvmeCommands.AllNamespaces)
    {
        Span<byte> sqe = stackalloc byte[SubmissionQueueEntry.Size];
        NvmeCommands.GetLogPage(sqe, lid, buffer.Length, offset, retainAsyncEvent, nsid);
        return _admin.SubmitAsync(sqe, buffer, TransferDirection.ControllerToHost);
    }

    /// <summary>Get Features; the value is in DW0.</summary>
    public ValueTask<NvmeCompletion> GetFeatureAsync(FeatureId fid, int select = 0, uint nsid = 0)
    {
        Span<byte> sqe = stackalloc byte[SubmissionQueueEntry.Size];
        NvmeCommands.GetFeatures(sqe, fid, select, nsid);
        return _admin.SubmitAsync(sqe);
    }

    public ValueTask<NvmeCompletion> SetFeatureAsync(FeatureId fid, uint value, bool save = false, uint nsid = 0)
    {
        Span<byte> sqe = stackalloc byte[SubmissionQueueEntry.Size];
        NvmeCommands.SetFeatures(sqe, fid, value, save, nsid);
        return _admin.SubmitAsync(sqe);
    }

    public ValueTask<NvmeCompletion> KeepAliveAsync()
    {
        Span<byte> sqe = stackalloc byte[SubmissionQueueEntry.Size];
        NvmeCommands.KeepAlive(sqe);
        return _admin.SubmitAsync(sqe);
    }

    /// <summary>
    /// Asynchronous Event Request: completes when the controller reports an event (DW0: type, info, log page).
    /// It holds an admin slot until then. Enable the events first with Set Features Asynchronous Event Configuration.
    /// </summary>
    public ValueTask<NvmeCompletion> AsyncEventRequestAsync()
    {
        Span<byte> sqe = stackalloc byte[SubmissionQueueEntry.Size];
        NvmeCommands.AsyncEventRequest(sqe);
        return _admin.SubmitAsync(sqe);
    }

    /// <summary>Reads the whole discovery log (70h) until the generation counter is stable across the read.</summary>
    public async Task<NvmeResult<DiscoveryLogPage>> GetDiscoveryLogAsync(int maxAttempts = 10)
    {
        const int chunkBytes = 64 * 1024;
        var header = new byte[DiscoveryLog.HeaderSize];
        NvmeCompletion c = default;
        for (int attempt = 0; attempt < maxAttempts; attempt++)
        {
            c = await GetLogPageAsync(LogPageId.Discovery, header).ConfigureAwait(false);
            if (!c.IsSuccess) return new(c, null);
            ulong genctr = DiscoveryLog.Genctr(header), numrec = DiscoveryLog.Numrec(header);
            if (numrec > 4096) throw new IOException($"discovery log claims {numrec} records");
            var page = new byte[DiscoveryLog.HeaderSize + (int)numrec * DiscoveryLog.EntrySize];
            for (int offset = 0; offset < page.Length; offset += chunkBytes)
            {
                c = await GetLogPageAsync(LogPageId.Discovery, page.AsMemory(offset, Math.Min(chunkBytes, page.Length - offset)), (ulong)offset).ConfigureAwait(false);
                if (!c.IsSuccess) return new(c, null);
            }
            c = await GetLogPageAsync(LogPageId.Discovery, header).ConfigureAwait(false);
            if (!c.IsSuccess) return new(c, null);
            if (DiscoveryLog.Genctr(header) != genctr || DiscoveryLog.Genctr(page) != genctr) continue;
            var entries = new DiscoveryLogEntry[(int)numrec];
            for (int i = 0; i < entries.Length; i++)
                entries[i] = DiscoveryLogEntry.Parse(page.AsSpan(DiscoveryLog.HeaderSize + i * DiscoveryLog.EntrySize, DiscoveryLog.EntrySize));
            return new(c, new DiscoveryLogPage(genctr, entries));
        }
        throw new IOException($"discovery log generation kept changing over {maxAttempts} reads");
    }

    // ---- NVM --------------------------------------------------------------------------------

    /// <summary>Reads <paramref name="blocks"/> blocks into buffer (its length must be blocks × block size).</summary>
    public ValueTask<NvmeCompletion> ReadAsync(uint nsid, ulong slba, int blocks, Memory<byte> buffer, ushort qid = 0)
    {
        Span<byte> sqe = stackalloc byte[SubmissionQueueEntry.Size];
        NvmeCommands.Read(sqe, nsid, slba, blocks);
        return IoQueue(qid).SubmitAsync(sqe, buffer, TransferDirection.ControllerToHost);
    }

    public ValueTask<NvmeCompletion> WriteAsync(uint nsid, ulong slba, int blocks, ReadOnlyMemory<byte> data, bool fua = false, ushort qid = 0)
    {
        Span<byte> sqe = stackalloc byte[SubmissionQueueEntry.Size];
        NvmeCommands.Write(sqe, nsid, slba, blocks, fua);
        return IoQueue(qid).SubmitWriteAsync(sqe, data);
    }

    public ValueTask<NvmeCompletion> CompareAsync(uint nsid, ulong slba, int blocks, ReadOnlyMemory<byte> data, ushort qid = 0)
    {
        Span<byte> sqe = stackalloc byte[SubmissionQueueEntry.Size];
        NvmeCommands.Compare(sqe, nsid, slba, blocks);
        return IoQueue(qid).SubmitWriteAsync(sqe, data);
    }

    /// <summary>Flush one namespace, or all with NSID FFFFFFFFh.</summary>
    public ValueTask<NvmeCompletion> FlushAsync(uint nsid = NvmeCommands.AllNamespaces, ushort qid = 0)
    {
        Span<byte> sqe = stackalloc byte[SubmissionQueueEntry.Size];
        NvmeCommands.Flush(sqe, nsid);
        return IoQueue(qid).SubmitAsync(sqe);
    }

    public ValueTask<NvmeCompletion> WriteZeroesAsync(uint nsid, ulong slba, int blocks, bool deallocate = false, bool fua = false, ushort qid = 0)
    {
        Span<byte> sqe = stackalloc byte[SubmissionQueueEntry.Size];
        NvmeCommands.WriteZeroes(sqe, nsid, slba, blocks, deallocate, fua);
        return IoQueue(qid).SubmitAsync(sqe);
    }

    /// <summary>Dataset Management, Deallocate (AD), one range.</summary>
    public ValueTask<NvmeCompletion> DeallocateAsync(uint nsid, ulong slba, uint blocks, ushort qid = 0) =>
        DeallocateAsync(nsid, [(slba, blocks)], qid);

    /// <summary>Dataset Management, Deallocate (AD), up to 256 ranges.</summary>
    public ValueTask<NvmeCompletion> DeallocateAsync(uint nsid, IReadOnlyList<(ulong Slba, uint Blocks)> ranges, ushort qid = 0)
    {
        var data = new byte[ranges.Count * NvmeCommands.DsmRangeSize];
        for (int i = 0; i < ranges.Count; i++)
            NvmeCommands.WriteDsmRange(data.AsSpan(i * NvmeCommands.DsmRangeSize), ranges[i].Slba, ranges[i].Blocks);
        Span<byte> sqe = stackalloc byte[SubmissionQueueEntry.Size];
        NvmeCommands.Deallocate(sqe, nsid, ranges.Count);
        return IoQueue(qid).SubmitWriteAsync(sqe, data);
    }
}
