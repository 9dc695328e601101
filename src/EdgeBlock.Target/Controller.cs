using EdgeBlock.Nvme;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Target;

/// <summary>
/// A controller created by an admin-queue Connect (dynamic controller model). Holds the
/// register state (CC/CSTS), features, the error log, pending asynchronous events and its queues.
/// Admin-path state is guarded by a lock; the I/O path only reads Subsystem and VolatileWriteCache.
/// </summary>
public sealed class Controller
{
    public const int ErrorLogEntries = 64;
    public const int AsyncEventRequestLimit = 4;
    private const int MaxChangedNamespaces = 1024;

    private readonly object _gate = new();
    private readonly QueuePair?[] _queues;
    private readonly Queue<NvmeRequest> _pendingAers = new();
    private readonly Queue<uint> _pendingEvents = new();
    private readonly SortedSet<uint> _changedNamespaces = new();
    private bool _changedNamespacesOverflow;
    private bool _namespaceNoticeMasked;
    private readonly ErrorLogEntryRecord[] _errorLog = new ErrorLogEntryRecord[ErrorLogEntries];
    private long _errorCount;
    private ITimer? _keepAliveTimer;
    private bool _destroyed;

    internal Controller(NvmeTarget target, Subsystem subsystem, ushort cntlid, string hostNqn, Guid hostId, uint katoMs)
    {
        Target = target;
        Subsystem = subsystem;
        Cntlid = cntlid;
        HostNqn = hostNqn;
        HostId = hostId;
        KatoMs = katoMs;
        _queues = new QueuePair?[target.Limits.MaxIoQueues + 1];
        GrantedIoQueues = target.Limits.MaxIoQueues;
        CreatedAt = target.Time.GetUtcNow();
    }

    public NvmeTarget Target { get; }
    public Subsystem Subsystem { get; }
    public ushort Cntlid { get; }
    public string HostNqn { get; }
    public Guid HostId { get; }
    public DateTimeOffset CreatedAt { get; }
    public bool IsDiscovery => Subsystem.IsDiscovery;
    /// <summary>The host had DH-HMAC-CHAP secrets when it connected: each of its queues must authenticate.</summary>
    public bool RequiresAuthentication { get; internal set; }

    public uint Cc { get; private set; }
    public uint Csts { get; private set; }
    public uint KatoMs { get; private set; }
    public int GrantedIoQueues { get; private set; }
    public bool VolatileWriteCacheEnabled { get; private set; } = true;
    public uint AsyncEventConfig { get; private set; }
    public uint Arbitration { get; private set; }
    public uint PowerManagement { get; private set; }
    public uint TemperatureThreshold { get; private set; } = 0x157;
    public bool IsReady => (Csts & ControllerProperties.CstsReady) != 0;

    public IReadOnlyList<QueuePair> Queues
    {
        get { lock (_gate) return _queues.Where(q => q != null).ToList()!; }
    }

    // ---- queues -------------------------------------------------------------

    internal bool TryInstallQueue(QueuePair queue, ushort qid)
    {
        lock (_gate)
        {
            if (_destroyed || qid >= _queues.Length || _queues[qid] != null) return false;
            _queues[qid] = queue;
            return true;
        }
    }

    internal void OnQueueDisconnected(QueuePair queue)
    {
        bool admin;
        lock (_gate)
        {
            if (queue.Qid < _queues.Length && _queues[queue.Qid] == queue) _queues[queue.Qid] = null;
            admin = queue.Qid == 0;
        }
        // The admin queue carries the controller: without it the controller is gone (as in nvmet).
        if (admin) Destroy("admin queue disconnected");
    }

    /// <summary>Deletes the controller: aborts every queue and forgets it.</summary>
    public void Destroy(string reason)
    {
        QueuePair?[] queues;
        lock (_gate)
        {
            if (_destroyed) return;
            _destroyed = true;
            queues = (QueuePair?[])_queues.Clone();
            Array.Clear(_queues);
            _pendingAers.Clear();
        }
        _keepAliveTimer?.Dispose();
        Target.Logger.LogInformation("controller {Cntlid} of {Subsys} for host {HostNqn} deleted: {Reason}", Cntlid, Subsystem.NqnName, HostNqn, reason);
        foreach (var q in queues) q?.Transport.Abort(reason);
        Subsystem.Detach(this);
        Target.ForgetController(this);
    }

    // ---- registers ----------------------------------------------------------

    internal NvmeStatus SetCc(uint value)
    {
        bool startShutdown = false;
        lock (_gate)
        {
            bool wasEnabled = ControllerProperties.CcEnable(Cc);
            bool enable = ControllerProperties.CcEnable(value);
            if (enable && !wasEnabled)
            {
                // Only 64-byte SQEs, 16-byte CQEs, 4 KiB pages and the NVM command set are offered.
                if (ControllerProperties.CcIosqes(value) != 6 || ControllerProperties.CcIocqes(value) != 4
                    || ControllerProperties.CcMps(value) != 0 || ControllerProperties.CcCss(value) != 0 || ControllerProperties.CcAms(value) != 0)
                {
                    Cc = value;
                    Csts |= ControllerProperties.CstsFatal;
                    return NvmeStatus.Success; // a bad CC is reported through CSTS.CFS, like a PCIe controller
                }
                Csts = ControllerProperties.CstsReady;
            }
            else if (!enable && wasEnabled)
            {
                Csts = 0; // controller reset
            }
            if (ControllerProperties.CcShn(value) != 0 && ControllerProperties.CcShn(Cc) == 0)
            {
                // Shutdown: report "occurring" until every namespace is flushed, then "complete", so a host
                // that waits for SHST before power-off never loses a write it saw complete.
                Csts = (Csts & ~0xCu) | ControllerProperties.CstsShutdownOccurring;
                Target.Logger.LogInformation("controller {Cntlid}: shutdown requested by host {HostNqn}", Cntlid, HostNqn);
                startShutdown = true;
            }
            else if (ControllerProperties.CcShn(value) == 0)
            {
                Csts &= ~0xCu;
            }
            Cc = value;
        }
        // Started outside the lock, once CC holds SHN, so a flush that completes at once finds it set.
        if (startShutdown) _ = ShutdownAsync();
        return NvmeStatus.Success;
    }

    private async Task ShutdownAsync()
    {
        bool ok = true;
        foreach (var ns in Subsystem.Namespaces.Values)
            ok &= await ns.Device.FlushAsync().ConfigureAwait(false) == Storage.BlockStatus.Success;
        lock (_gate)
        {
            if (ControllerProperties.CcShn(Cc) == 0) return; // the host cancelled the shutdown meanwhile
            Csts = (Csts & ~0xCu) | ControllerProperties.CstsShutdownComplete | (ok ? 0 : ControllerProperties.CstsFatal);
        }
        if (!ok) Target.Logger.LogError("controller {Cntlid}: flush during shutdown failed", Cntlid);
    }

    internal void SetFatal()
    {
        lock (_gate) Csts |= ControllerProperties.CstsFatal;
    }

    // ---- features -----------------------------------------------------------

    internal NvmeStatus SetNumberOfQueues(int requested, out uint result)
    {
        lock (_gate)
        {
            result = 0;
            for (int i = 1; i < _queues.Length; i++)
                if (_queues[i] != null) return NvmeStatus.CommandSequenceError;
            GrantedIoQueues = Math.Min(requested, Target.Limits.MaxIoQueues);
            uint n = (uint)(GrantedIoQueues - 1);
            result = n | n << 16;
            return NvmeStatus.Success;
        }
    }

    internal void SetKato(uint ms)
    {
        lock (_gate) KatoMs = ms;
        StartKeepAlive();
    }

    internal void SetVolatileWriteCache(bool enabled) => VolatileWriteCacheEnabled = enabled;
    internal void SetAsyncEventConfig(uint value) => AsyncEventConfig = value;
    internal void SetArbitration(uint value) => Arbitration = value;
    internal void SetPowerManagement(uint value) => PowerManagement = value;
    internal void SetTemperatureThreshold(uint value) => TemperatureThreshold = value;

    // ---- keep alive ---------------------------------------------------------

    /// <summary>
    /// Traffic-based keep alive as in nvmet: every KATO the timer checks that some command arrived
    /// on some queue since the last check; if none did, the controller is torn down.
    /// </summary>
    internal void StartKeepAlive()
    {
        _keepAliveTimer?.Dispose();
        _keepAliveTimer = null;
        if (KatoMs == 0) return;
        var period = TimeSpan.FromMilliseconds(KatoMs);
        _keepAliveTimer = Target.Time.CreateTimer(_ => CheckKeepAlive(), null, period, period);
    }

    private void CheckKeepAlive()
    {
        bool active = false;
        lock (_gate)
        {
            if (_destroyed) return;
            foreach (var q in _queues)
            {
                if (q == null) continue;
                if (q.ActivitySinceLastCheck) active = true;
                q.ActivitySinceLastCheck = false;
            }
        }
        if (active) return;
        Target.Logger.LogWarning("controller {Cntlid} of {Subsys}: keep alive timeout ({Kato} ms) for host {HostNqn}", Cntlid, Subsystem.NqnName, KatoMs, HostNqn);
        SetFatal();
        Destroy("keep alive timeout");
    }

    // ---- asynchronous events --------------------------------------------------

    /// <summary>Parks an AER until an event; false when the limit is reached.</summary>
    internal bool TryParkAer(NvmeRequest request, out bool completedNow)
    {
        completedNow = false;
        lock (_gate)
        {
            if (_pendingEvents.Count > 0)
            {
                request.Result = _pendingEvents.Dequeue();
                completedNow = true;
                return true;
            }
            if (_pendingAers.Count >= AsyncEventRequestLimit) return false;
            _pendingAers.Enqueue(request);
            return true;
        }
    }

    internal void OnNamespaceChanged(uint nsid)
    {
        uint evt;
        lock (_gate)
        {
            if (_changedNamespaces.Count < MaxChangedNamespaces) _changedNamespaces.Add(nsid);
            else _changedNamespacesOverflow = true;
            // One notice until the host reads the Changed Namespace List (the event is masked until then).
            if ((AsyncEventConfig & AsyncEvent.NamespaceAttributeNotices) == 0 || _namespaceNoticeMasked) return;
            _namespaceNoticeMasked = true;
            evt = AsyncEvent.Result(AsyncEvent.TypeNotice, AsyncEvent.InfoNamespaceAttributeChanged, LogPageId.ChangedNamespaceList);
        }
        RaiseEvent(evt);
    }

    internal void OnDiscoveryChanged()
    {
        if ((AsyncEventConfig & AsyncEvent.DiscoveryLogChangeNotices) == 0) return;
        RaiseEvent(AsyncEvent.Result(AsyncEvent.TypeNotice, AsyncEvent.InfoDiscoveryLogChanged, LogPageId.Discovery));
    }

    private void RaiseEvent(uint result)
    {
        NvmeRequest? aer;
        lock (_gate)
        {
            if (_destroyed) return;
            if (!_pendingAers.TryDequeue(out aer)) { _pendingEvents.Enqueue(result); return; }
        }
        aer.Result = result;
        aer.Status = NvmeStatus.Success;
        _queues[0]?.Transport.CompleteDeferred(aer);
    }

    /// <summary>Returns and clears the changed namespace list (unless retain), unmasking the notice.</summary>
    internal void ReadChangedNamespaces(Span<byte> page, bool retain)
    {
        lock (_gate)
        {
            page.Clear();
            if (_changedNamespacesOverflow)
                System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(page, 0xFFFFFFFF);
            else
            {
                int i = 0;
                foreach (uint nsid in _changedNamespaces)
                    System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(page[(4 * i++)..], nsid);
            }
            if (retain) return;
            _changedNamespaces.Clear();
            _changedNamespacesOverflow = false;
            _namespaceNoticeMasked = false;
        }
    }

    // ---- error log ------------------------------------------------------------

    internal void RecordError(ushort sqid, NvmeRequest request, ulong lba)
    {
        lock (_gate)
        {
            _errorCount++;
            _errorLog[(_errorCount - 1) % ErrorLogEntries] = new ErrorLogEntryRecord(
                (ulong)_errorCount, sqid, request.CommandId, request.Status, request.ErrorLocation, lba, request.Sqe.Nsid);
        }
    }

    /// <summary>Writes the error log, newest entry first.</summary>
    internal void WriteErrorLog(Span<byte> page)
    {
        lock (_gate)
        {
            page.Clear();
            long count = Math.Min(_errorCount, ErrorLogEntries);
            for (int i = 0; i < count && (i + 1) * ErrorLogEntry.Size <= page.Length; i++)
            {
                var e = _errorLog[(_errorCount - 1 - i) % ErrorLogEntries];
                ErrorLogEntry.Write(page[(i * ErrorLogEntry.Size)..], e.Count, e.SqId, e.CommandId, e.Status, e.Location, e.Lba, e.Nsid);
            }
        }
    }

    public long ErrorCount => Interlocked.Read(ref _errorCount);

    private readonly record struct ErrorLogEntryRecord(ulong Count, ushort SqId, ushort CommandId, NvmeStatus Status, ushort Location, ulong Lba, uint Nsid);
}
