using System.Buffers.Binary;
using EdgeBlock.Nvme;

namespace EdgeBlock.Target;

/// <summary>Admin commands over fabrics (nvmet's admin-cmd.c): one entry per opcode, one method per CNS, log page and feature.</summary>
internal static class AdminCommands
{
    private const int PageSize = 4096;

    public static readonly NvmeCommand[] Entries =
    [
        new() { Code = (byte)AdminOpcode.GetLogPage, Name = "Get Log Page", OnDiscovery = true, Parse = ParseGetLogPage, Execute = NvmeCommand.Sync(LogPage) },
        new() { Code = (byte)AdminOpcode.Identify, Name = "Identify", OnDiscovery = true, Parse = ParseIdentify, Execute = NvmeCommand.Sync(Identify) },
        // Abort never aborts (CDW0 bit 0 set): commands finish quickly and the host then waits for them.
        new() { Code = (byte)AdminOpcode.Abort, Name = "Abort", Parse = NvmeCommand.NoData, Execute = NvmeCommand.Sync(static (_, r) => r.Result = 1) },
        new() { Code = (byte)AdminOpcode.SetFeatures, Name = "Set Features", OnDiscovery = true, Parse = NvmeCommand.NoData, Execute = NvmeCommand.Sync(SetFeatures) },
        new() { Code = (byte)AdminOpcode.GetFeatures, Name = "Get Features", OnDiscovery = true, Parse = NvmeCommand.NoData, Execute = NvmeCommand.Sync(GetFeatures) },
        new() { Code = (byte)AdminOpcode.AsyncEventRequest, Name = "Asynchronous Event Request", OnDiscovery = true, Parse = NvmeCommand.NoData, Execute = NvmeCommand.Sync(AsyncEventRequest) },
        // The queue's activity flag, set when the command was parsed, is all Keep Alive does.
        new() { Code = (byte)AdminOpcode.KeepAlive, Name = "Keep Alive", OnDiscovery = true, Parse = NvmeCommand.NoData, Execute = NvmeCommand.Sync(static (_, _) => { }) },
    ];

    private static bool ParseGetLogPage(QueuePair queue, NvmeRequest request)
    {
        long length = GetLogPage.Length(request.Sqe);
        if (length > queue.Target.Limits.MaxTransferBytes) return request.Fail(NvmeStatus.InvalidField, SqeOffset.Cdw10);
        return request.Accept(DataDirection.ControllerToHost, (int)length);
    }

    private static void AsyncEventRequest(QueuePair queue, NvmeRequest request)
    {
        if (!queue.Controller!.TryParkAer(request, out bool completedNow)) request.Status = NvmeStatus.AsyncEventRequestLimitExceeded;
        else if (!completedNow) request.CompletionDeferred = true;
    }

    // ---- Identify ----------------------------------------------------------------

    private static bool ParseIdentify(QueuePair queue, NvmeRequest request)
    {
        if (IdentifyHandler(queue.Controller!, request.Sqe) == null) return request.Fail(NvmeStatus.InvalidField, SqeOffset.Cdw10);
        return request.Accept(DataDirection.ControllerToHost, PageSize);
    }

    private static void Identify(QueuePair queue, NvmeRequest request) =>
        IdentifyHandler(queue.Controller!, request.Sqe)!(queue, request);

    /// <summary>The data structure a CNS returns on this controller, or null when it has none.</summary>
    private static Action<QueuePair, NvmeRequest>? IdentifyHandler(Controller controller, in SubmissionQueueEntry sqe) =>
        (IdentifyCns)(sqe.Cdw10 & 0xFF) switch
        {
            IdentifyCns.Controller => IdentifyController,
            IdentifyCns.Namespace when !controller.IsDiscovery => IdentifyNamespace,
            IdentifyCns.ActiveNamespaceList when !controller.IsDiscovery => IdentifyActiveNamespaces,
            IdentifyCns.NamespaceDescriptorList when !controller.IsDiscovery => IdentifyDescriptors,
            // I/O command set specific controller data for the NVM command set (CSI 0): no extra limits to report.
            IdentifyCns.IoCommandSetController when !controller.IsDiscovery && sqe.Cdw11 >> 24 == 0 => IdentifyZeroes,
            _ => null,
        };

    private static void IdentifyZeroes(QueuePair queue, NvmeRequest request) => request.Data.Span[..PageSize].Clear();

    private static void IdentifyController(QueuePair queue, NvmeRequest request)
    {
        var target = queue.Target;
        var controller = queue.Controller!;
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
            Oncs = controller.IsDiscovery ? (ushort)0 : (ushort)CommandTable.Oncs,
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

    private static void IdentifyNamespace(QueuePair queue, NvmeRequest request)
    {
        var controller = queue.Controller!;
        uint nsid = request.Sqe.Nsid;
        var ns = controller.Subsystem.FindNamespace(nsid);
        var page = request.Data.Span;
        if (ns == null)
        {
            // An allocated-but-inactive NSID in range returns zeroes; anything else is invalid.
            if (nsid is 0 or 0xFFFFFFFF || nsid > Subsystem.MaxNsid) request.Fail(NvmeStatus.InvalidNamespace, SqeOffset.Nsid);
            else page[..PageSize].Clear();
            return;
        }
        IdentifyNamespaceData.Write(page, ns.BlockCount, ns.BlockCount, ns.BlockSize, thin: false,
            deallocateReadsZeroes: ns.Device.SupportsDeallocate, ns.Nguid, eui64: 0);
    }

    private static void IdentifyActiveNamespaces(QueuePair queue, NvmeRequest request)
    {
        var controller = queue.Controller!;
        uint after = request.Sqe.Nsid;
        if (after is 0xFFFFFFFE or 0xFFFFFFFF) { request.Fail(NvmeStatus.InvalidNamespace, SqeOffset.Nsid); return; }
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

    private static void IdentifyDescriptors(QueuePair queue, NvmeRequest request)
    {
        var ns = queue.Controller!.Subsystem.FindNamespace(request.Sqe.Nsid);
        if (ns == null) { request.Fail(NvmeStatus.InvalidNamespace, SqeOffset.Nsid); return; }
        NamespaceDescriptorList.Write(request.Data.Span, ns.Nguid, ns.Uuid);
    }

    // ---- Get Log Page ---------------------------------------------------------

    private static void LogPage(QueuePair queue, NvmeRequest request)
    {
        var target = queue.Target;
        var controller = queue.Controller!;
        var sqe = request.Sqe;
        var lid = GetLogPage.Lid(sqe);
        ulong offset = GetLogPage.Offset(sqe);
        bool retain = GetLogPage.Rae(sqe);
        int length = request.DataLength;
        if ((offset & 3) != 0) { request.Fail(NvmeStatus.InvalidField, SqeOffset.Cdw12); return; }

        // Build the whole page, then copy the requested window (LPOL/LPOU) out of it.
        byte[] page = lid switch
        {
            LogPageId.ErrorInformation => Build(Controller.ErrorLogEntries * ErrorLogEntry.Size, controller.WriteErrorLog),
            LogPageId.SmartHealth when !controller.IsDiscovery => Build(SmartLog.Size, p => WriteSmartLog(target, controller, p)),
            LogPageId.FirmwareSlot when !controller.IsDiscovery => Build(FirmwareSlotLog.Size, p => FirmwareSlotLog.Write(p, target.FirmwareRevision)),
            LogPageId.ChangedNamespaceList when !controller.IsDiscovery => Build(PageSize, p => controller.ReadChangedNamespaces(p, retain)),
            LogPageId.CommandsSupportedAndEffects when !controller.IsDiscovery => Build(CommandEffectsLog.Size, CommandTable.WriteEffectsLog),
            LogPageId.Discovery when controller.IsDiscovery => Discovery.BuildLogPage(target, controller, queue.Transport.LocalEndpoint),
            _ => [],
        };
        if (page.Length == 0) { request.Fail(NvmeStatus.InvalidLogPage, SqeOffset.Cdw10); return; }
        if (offset > (ulong)page.Length) { request.Fail(NvmeStatus.InvalidField, SqeOffset.Cdw12); return; }

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

    private static void WriteSmartLog(NvmeTarget target, Controller controller, Span<byte> page)
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

    // ---- Features -------------------------------------------------------------

    private static void GetFeatures(QueuePair queue, NvmeRequest request)
    {
        var controller = queue.Controller!;
        var sqe = request.Sqe;
        var fid = (FeatureId)(sqe.Cdw10 & 0xFF);
        int select = (int)(sqe.Cdw10 >> 8) & 0x7;
        if (select == 3) // supported capabilities: changeable, not saveable, not namespace specific
        {
            if (IsKnownFeature(controller, fid)) request.Result = 1u << 2;
            else request.Fail(NvmeStatus.InvalidField, SqeOffset.Cdw10);
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
        if (value is null) { request.Fail(NvmeStatus.InvalidField, SqeOffset.Cdw10); return; }
        request.Result = value.Value;
    }

    private static bool IsKnownFeature(Controller controller, FeatureId fid) =>
        fid is FeatureId.AsyncEventConfiguration or FeatureId.KeepAliveTimer
        || (!controller.IsDiscovery && fid is FeatureId.Arbitration or FeatureId.PowerManagement or FeatureId.TemperatureThreshold
            or FeatureId.ErrorRecovery or FeatureId.VolatileWriteCache or FeatureId.NumberOfQueues or FeatureId.WriteAtomicityNormal);

    private static void SetFeatures(QueuePair queue, NvmeRequest request)
    {
        var controller = queue.Controller!;
        var sqe = request.Sqe;
        var fid = (FeatureId)(sqe.Cdw10 & 0xFF);
        uint value = sqe.Cdw11;
        if ((sqe.Cdw10 & 0x8000_0000) != 0) { request.Fail(NvmeStatus.FeatureIdNotSaveable, SqeOffset.Cdw10); return; }
        if (!IsKnownFeature(controller, fid)) { request.Fail(NvmeStatus.InvalidField, SqeOffset.Cdw10); return; }
        switch (fid)
        {
            case FeatureId.NumberOfQueues:
                int nsqr = (int)(value & 0xFFFF), ncqr = (int)(value >> 16);
                if (nsqr == 0xFFFF || ncqr == 0xFFFF) { request.Fail(NvmeStatus.InvalidField, SqeOffset.Cdw11); return; }
                request.Status = controller.SetNumberOfQueues(Math.Min(nsqr, ncqr) + 1, out uint granted);
                request.Result = granted;
                break;
            case FeatureId.KeepAliveTimer: controller.SetKato(value); break;
            case FeatureId.AsyncEventConfiguration: controller.SetAsyncEventConfig(value); break;
            case FeatureId.VolatileWriteCache: controller.SetVolatileWriteCache((value & 1) != 0); break;
            case FeatureId.Arbitration: controller.SetArbitration(value); break;
            case FeatureId.TemperatureThreshold: controller.SetTemperatureThreshold(value); break;
            case FeatureId.PowerManagement:
                if ((value & 0x1F) != 0) { request.Fail(NvmeStatus.InvalidField, SqeOffset.Cdw11); return; } // only power state 0 exists
                controller.SetPowerManagement(value);
                break;
            default:
                request.Fail(NvmeStatus.FeatureNotChangeable, SqeOffset.Cdw10);
                break;
        }
    }
}
