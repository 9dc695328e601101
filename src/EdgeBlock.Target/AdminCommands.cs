using System.Buffers.Binary;
using EdgeBlock.Nvme;

namespace EdgeBlock.Target;

/// <summary>Admin commands over fabrics (nvmet's admin-cmd.c): one method per CNS, log page and feature.</summary>
internal sealed class AdminCommands(NvmeTarget target)
{
    private const int PageSize = 4096;

    public bool Parse(QueuePair queue, Controller controller, NvmeRequest request)
    {
        var sqe = request.Sqe;
        // Only Connect and Property Get/Set are allowed before the host enables the controller.
        if (!controller.IsReady) return request.Fail(NvmeStatus.CommandSequenceError);
        switch ((AdminOpcode)sqe.Opcode)
        {
            case AdminOpcode.Identify:
                return ParseIdentify(controller, request);
            case AdminOpcode.GetLogPage:
                long length = GetLogPage.Length(sqe);
                if (length > target.Limits.MaxTransferBytes) return request.Fail(NvmeStatus.InvalidField, 40);
                return Accept(request, CommandKind.GetLogPage, DataDirection.ControllerToHost, (int)length);
            case AdminOpcode.GetFeatures:
                return Accept(request, CommandKind.GetFeatures);
            case AdminOpcode.SetFeatures:
                return Accept(request, CommandKind.SetFeatures);
            case AdminOpcode.AsyncEventRequest:
                return Accept(request, CommandKind.AsyncEventRequest);
            case AdminOpcode.KeepAlive:
                return Accept(request, CommandKind.KeepAlive);
            case AdminOpcode.Abort when !controller.IsDiscovery:
                return Accept(request, CommandKind.Abort);
            default:
                return request.Fail(NvmeStatus.InvalidOpcode, 0);
        }
    }

    private static bool Accept(NvmeRequest request, CommandKind kind, DataDirection direction = DataDirection.None, int length = 0)
    {
        request.Kind = kind;
        request.Direction = direction;
        request.DataLength = length;
        return true;
    }

    private static bool ParseIdentify(Controller controller, NvmeRequest request)
    {
        var cns = (IdentifyCns)(request.Sqe.Cdw10 & 0xFF);
        CommandKind kind = cns switch
        {
            IdentifyCns.Controller => CommandKind.IdentifyController,
            IdentifyCns.Namespace when !controller.IsDiscovery => CommandKind.IdentifyNamespace,
            IdentifyCns.ActiveNamespaceList when !controller.IsDiscovery => CommandKind.IdentifyActiveNamespaces,
            IdentifyCns.NamespaceDescriptorList when !controller.IsDiscovery => CommandKind.IdentifyDescriptors,
            // I/O command set specific controller data for the NVM command set (CSI 0): no extra limits to report.
            IdentifyCns.IoCommandSetController when !controller.IsDiscovery && request.Sqe.Cdw11 >> 24 == 0 => CommandKind.IdentifyZeroes,
            _ => CommandKind.None,
        };
        if (kind == CommandKind.None) return request.Fail(NvmeStatus.InvalidField, 40);
        return Accept(request, kind, DataDirection.ControllerToHost, PageSize);
    }

    public ValueTask ExecuteAsync(QueuePair queue, NvmeRequest request)
    {
        var controller = queue.Controller!;
        switch (request.Kind)
        {
            case CommandKind.IdentifyController: IdentifyController(controller, request); break;
            case CommandKind.IdentifyNamespace: IdentifyNamespace(controller, request); break;
            case CommandKind.IdentifyActiveNamespaces: IdentifyActiveNamespaces(controller, request); break;
            case CommandKind.IdentifyDescriptors: IdentifyDescriptors(controller, request); break;
            case CommandKind.IdentifyZeroes: request.Data.Span[..PageSize].Clear(); break;
            case CommandKind.GetLogPage: LogPage(queue, controller, request); break;
            case CommandKind.GetFeatures: GetFeatures(controller, request); break;
            case CommandKind.SetFeatures: SetFeatures(controller, request); break;
            case CommandKind.KeepAlive: break; // the queue's activity flag was set by Parse
            case CommandKind.Abort: request.Result = 1; break; // bit 0 set: the command was not aborted
            case CommandKind.AsyncEventRequest:
                if (!controller.TryParkAer(request, out bool completedNow)) request.Status = NvmeStatus.AsyncEventRequestLimitExceeded;
                else if (!completedNow) request.CompletionDeferred = true;
                break;
        }
        target.RecordIfError(queue, request);
        return default;
    }

    // ---- Identify ----------------------------------------------------------------

    private void IdentifyController(Controller controller, NvmeRequest request)
    {
        var limits = target.Limits;
        var subsystem = controller.Subsystem;
        var data = new IdentifyControllerData
        {
            SerialNumber = subsystem.SerialNumber,
            ModelNumber = subsystem.ModelNumber,
            FirmwareRevision = target.FirmwareRevision,
            Mdts = limits.MdtsPow2, // also on discovery controllers: Get Log Page is bounded by the same buffers
            Cntlid = controller.Cntlid,
            Version = ControllerProperties.Version14,
            Oaes = controller.IsDiscovery ? AsyncEvent.DiscoveryLogChangeNotices : AsyncEvent.NamespaceAttributeNotices,
            Ctratt = 1 | 1 << 6, // 128-bit host identifier, traffic based keep alive
            ControllerType = controller.IsDiscovery ? (byte)2 : (byte)1,
            Acl = 3,
            Aerl = Controller.AsyncEventRequestLimit - 1,
            Frmw = 0x3, // slot 1 read-only, one slot
            Lpa = 0x6,  // commands supported and effects log, extended data for Get Log Page
            Elpe = Controller.ErrorLogEntries - 1,
            Kas = 10,   // keep alive granularity 1 s (100 ms units)
            Maxcmd = (ushort)limits.MaxQueueEntries,
            NamespaceCount = controller.IsDiscovery ? 0 : Subsystem.MaxNsid,
            Oncs = controller.IsDiscovery ? (ushort)0 : (ushort)(1 << 0 | 1 << 2 | 1 << 3), // Compare, DSM, Write Zeroes
            Vwc = controller.IsDiscovery ? (byte)0 : (byte)0x7, // present; Flush with NSID FFFFFFFFh supported
            Sgls = 1 | 1 << 20, // SGLs supported; SGL data block address is an offset (in-capsule data)
            SubsystemNqn = subsystem.NqnName,
            Ioccsz = (uint)(SubmissionQueueEntry.Size + limits.InCapsuleDataBytes) / 16,
            Iorcsz = CompletionQueueEntry.Size / 16,
            Msdbd = 1,
            Wctemp = 0x157,
            Cctemp = 0x175,
        };
        data.Write(request.Data.Span);
    }

    private static void IdentifyNamespace(Controller controller, NvmeRequest request)
    {
        uint nsid = request.Sqe.Nsid;
        var ns = controller.Subsystem.FindNamespace(nsid);
        var page = request.Data.Span;
        if (ns == null)
        {
            // An allocated-but-inactive NSID in range returns zeroes; anything else is invalid.
            if (nsid is 0 or 0xFFFFFFFF || nsid > Subsystem.MaxNsid) request.Fail(NvmeStatus.InvalidNamespace, 4);
            else page[..PageSize].Clear();
            return;
        }
        IdentifyNamespaceData.Write(page, ns.BlockCount, ns.BlockCount, ns.BlockSize, thin: false,
            deallocateReadsZeroes: ns.Device.SupportsDeallocate, ns.Nguid, eui64: 0);
    }

    private static void IdentifyActiveNamespaces(Controller controller, NvmeRequest request)
    {
        uint after = request.Sqe.Nsid;
        if (after is 0xFFFFFFFE or 0xFFFFFFFF) { request.Fail(NvmeStatus.InvalidNamespace, 4); return; }
        var page = request.Data.Span;
        page[..PageSize].Clear();
        int i = 0;
        foreach (uint nsid in controller.Subsystem.Namespaces.Keys)
        {
            if (nsid <= after) continue;
            if (i == PageSize / 4) break;
            BinaryPrimitives.WriteUInt32LittleEndian(page[(4 * i++)..], nsid);
        }
    }

    private static void IdentifyDescriptors(Controller controller, NvmeRequest request)
    {
        var ns = controller.Subsystem.FindNamespace(request.Sqe.Nsid);
        if (ns == null) { request.Fail(NvmeStatus.InvalidNamespace, 4); return; }
        NamespaceDescriptorList.Write(request.Data.Span, ns.Nguid, ns.Uuid);
    }

    // ---- Get Log Page ---------------------------------------------------------

    private void LogPage(QueuePair queue, Controller controller, NvmeRequest request)
    {
        var sqe = request.Sqe;
        var lid = GetLogPage.Lid(sqe);
        ulong offset = GetLogPage.Offset(sqe);
        bool retain = GetLogPage.Rae(sqe);
        int length = request.DataLength;
        if ((offset & 3) != 0) { request.Fail(NvmeStatus.InvalidField, 48); return; }

        // Build the whole page, then copy the requested window (LPOL/LPOU) out of it.
        byte[] page = lid switch
        {
            LogPageId.ErrorInformation => Build(Controller.ErrorLogEntries * ErrorLogEntry.Size, controller.WriteErrorLog),
            LogPageId.SmartHealth when !controller.IsDiscovery => Build(SmartLog.Size, p => WriteSmartLog(controller, p)),
            LogPageId.FirmwareSlot when !controller.IsDiscovery => Build(FirmwareSlotLog.Size, p => FirmwareSlotLog.Write(p, target.FirmwareRevision)),
            LogPageId.ChangedNamespaceList when !controller.IsDiscovery => Build(PageSize, p => controller.ReadChangedNamespaces(p, retain)),
            LogPageId.CommandsSupportedAndEffects when !controller.IsDiscovery => Build(PageSize, WriteCommandEffects),
            LogPageId.Discovery when controller.IsDiscovery => Discovery.BuildLogPage(target, controller, queue.Transport.LocalEndpoint),
            _ => [],
        };
        if (page.Length == 0) { request.Fail(NvmeStatus.InvalidLogPage, 40); return; }
        if (offset > (ulong)page.Length) { request.Fail(NvmeStatus.InvalidField, 48); return; }

        var dest = request.Data.Span[..length];
        dest.Clear();
        var window = page.AsSpan((int)offset);
        window[..Math.Min(window.Length, length)].CopyTo(dest);
    }

    private delegate void PageWriter(Span<byte> page);

    private static byte[] Build(int size, PageWriter write)
    {
        var page = new byte[size];
        write(page);
        return page;
    }

    private void WriteSmartLog(Controller controller, Span<byte> page)
    {
        long reads = 0, writes = 0, bytesRead = 0, bytesWritten = 0, errors = 0;
        foreach (var ns in controller.Subsystem.Namespaces.Values)
        {
            reads += Interlocked.Read(ref ns.Counters.ReadCommands);
            writes += Interlocked.Read(ref ns.Counters.WriteCommands);
            bytesRead += Interlocked.Read(ref ns.Counters.BytesRead);
            bytesWritten += Interlocked.Read(ref ns.Counters.BytesWritten);
            errors += Interlocked.Read(ref ns.Counters.Errors);
        }
        // Data units are thousands of 512-byte units, rounded up.
        static UInt128 Units(long bytes) => (UInt128)((bytes / 512 + 999) / 1000);
        double hours = (target.Time.GetUtcNow() - controller.CreatedAt).TotalHours;
        SmartLog.Write(page, temperatureKelvin: 300, availableSpare: 100, Units(bytesRead), Units(bytesWritten),
            (UInt128)reads, (UInt128)writes, (UInt128)(ulong)hours, mediaErrors: (UInt128)errors, errorLogEntries: (UInt128)controller.ErrorCount);
    }

    /// <summary>Commands Supported and Effects: CSUPP for what we implement, LBCC for commands that change data.</summary>
    private static void WriteCommandEffects(Span<byte> page)
    {
        page.Clear();
        const uint csupp = 1, lbcc = 1 << 1;
        foreach (var op in new[] { AdminOpcode.GetLogPage, AdminOpcode.Identify, AdminOpcode.Abort, AdminOpcode.SetFeatures,
                     AdminOpcode.GetFeatures, AdminOpcode.AsyncEventRequest, AdminOpcode.KeepAlive })
            BinaryPrimitives.WriteUInt32LittleEndian(page[(4 * (int)op)..], csupp);
        foreach (var op in new[] { NvmOpcode.Flush, NvmOpcode.Read, NvmOpcode.Compare })
            BinaryPrimitives.WriteUInt32LittleEndian(page[(1024 + 4 * (int)op)..], csupp);
        foreach (var op in new[] { NvmOpcode.Write, NvmOpcode.WriteZeroes, NvmOpcode.DatasetManagement })
            BinaryPrimitives.WriteUInt32LittleEndian(page[(1024 + 4 * (int)op)..], csupp | lbcc);
    }

    // ---- Features -------------------------------------------------------------

    private static void GetFeatures(Controller controller, NvmeRequest request)
    {
        var sqe = request.Sqe;
        var fid = (FeatureId)(sqe.Cdw10 & 0xFF);
        int select = (int)(sqe.Cdw10 >> 8) & 0x7;
        if (select == 3) // supported capabilities: changeable, not saveable, not namespace specific
        {
            if (IsKnownFeature(controller, fid)) request.Result = 1u << 2;
            else request.Fail(NvmeStatus.InvalidField, 40);
            return;
        }
        uint? value = fid switch
        {
            FeatureId.Arbitration when !controller.IsDiscovery => controller.Arbitration,
            FeatureId.PowerManagement when !controller.IsDiscovery => controller.PowerManagement,
            FeatureId.TemperatureThreshold when !controller.IsDiscovery => controller.TemperatureThreshold,
            FeatureId.ErrorRecovery when !controller.IsDiscovery => 0u,
            FeatureId.VolatileWriteCache when !controller.IsDiscovery => controller.VolatileWriteCacheEnabled ? 1u : 0u,
            FeatureId.NumberOfQueues when !controller.IsDiscovery => (uint)(controller.GrantedIoQueues - 1) * 0x10001u,
            FeatureId.WriteAtomicityNormal when !controller.IsDiscovery => 0u,
            FeatureId.AsyncEventConfiguration => controller.AsyncEventConfig,
            FeatureId.KeepAliveTimer => controller.KatoMs,
            _ => null,
        };
        if (value is null) { request.Fail(NvmeStatus.InvalidField, 40); return; }
        request.Result = value.Value;
    }

    private static bool IsKnownFeature(Controller controller, FeatureId fid) =>
        fid is FeatureId.AsyncEventConfiguration or FeatureId.KeepAliveTimer
        || (!controller.IsDiscovery && fid is FeatureId.Arbitration or FeatureId.PowerManagement or FeatureId.TemperatureThreshold
            or FeatureId.ErrorRecovery or FeatureId.VolatileWriteCache or FeatureId.NumberOfQueues or FeatureId.WriteAtomicityNormal);

    private static void SetFeatures(Controller controller, NvmeRequest request)
    {
        var sqe = request.Sqe;
        var fid = (FeatureId)(sqe.Cdw10 & 0xFF);
        uint value = sqe.Cdw11;
        if ((sqe.Cdw10 & 0x8000_0000) != 0) { request.Fail(NvmeStatus.FeatureIdNotSaveable, 40); return; }
        if (!IsKnownFeature(controller, fid)) { request.Fail(NvmeStatus.InvalidField, 40); return; }
        switch (fid)
        {
            case FeatureId.NumberOfQueues:
                int nsqr = (int)(value & 0xFFFF), ncqr = (int)(value >> 16);
                if (nsqr == 0xFFFF || ncqr == 0xFFFF) { request.Fail(NvmeStatus.InvalidField, 44); return; }
                request.Status = controller.SetNumberOfQueues(Math.Min(nsqr, ncqr) + 1, out uint granted);
                request.Result = granted;
                break;
            case FeatureId.KeepAliveTimer: controller.SetKato(value); break;
            case FeatureId.AsyncEventConfiguration: controller.SetAsyncEventConfig(value); break;
            case FeatureId.VolatileWriteCache: controller.SetVolatileWriteCache((value & 1) != 0); break;
            case FeatureId.Arbitration: controller.SetArbitration(value); break;
            case FeatureId.TemperatureThreshold: controller.SetTemperatureThreshold(value); break;
            case FeatureId.PowerManagement:
                if ((value & 0x1F) != 0) { request.Fail(NvmeStatus.InvalidField, 44); return; } // only power state 0 exists
                controller.SetPowerManagement(value);
                break;
            default:
                request.Fail(NvmeStatus.FeatureNotChangeable, 40);
                break;
        }
    }
}
