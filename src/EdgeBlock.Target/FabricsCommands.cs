using EdgeBlock.Nvme;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Target;

/// <summary>Fabrics commands: Connect, Property Get/Set, Disconnect (nvmet's fabrics-cmd.c). One entry per FCTYPE.</summary>
internal static class FabricsCommands
{
    // SQE byte offsets of Connect fields, reported as IPO when they are invalid.
    internal const ushort QidOffset = 42, SqSizeOffset = 44;

    public static readonly NvmeCommand[] Entries =
    [
        new() { Code = (byte)FabricsCommandType.Connect, Name = "Connect", Parse = ParseConnect, Execute = NvmeCommand.Sync(ExecuteConnectOrLogWhyNot), BeforeAuthentication = true },
        new() { Code = (byte)FabricsCommandType.PropertyGet, Name = "Property Get", Parse = ParseProperty, Execute = NvmeCommand.Sync(ExecutePropertyGet) },
        new() { Code = (byte)FabricsCommandType.PropertySet, Name = "Property Set", Parse = ParseProperty, Execute = NvmeCommand.Sync(ExecutePropertySet) },
        new()
        {
            Code = (byte)FabricsCommandType.Disconnect, Name = "Disconnect", Parse = ParseConnected, BeforeAuthentication = true,
            Execute = NvmeCommand.Sync(static (_, r) => r.DisconnectAfterCompletion = true),
        },
        AuthenticationCommands.Send,
        AuthenticationCommands.Receive,
    ];

    private static bool ParseConnect(QueuePair queue, NvmeRequest request) =>
        queue.IsConnected ? request.Fail(NvmeStatus.CommandSequenceError) : request.Accept(DataDirection.HostToController, Connect.DataSize);

    private static bool ParseConnected(QueuePair queue, NvmeRequest request) =>
        queue.IsConnected || request.Fail(NvmeStatus.CommandSequenceError);

    /// <summary>Properties are the admin queue's business.</summary>
    private static bool ParseProperty(QueuePair queue, NvmeRequest request) =>
        ParseConnected(queue, request) && (queue.Qid == 0 || request.Fail(NvmeStatus.InvalidOpcode));

    /// <summary>Every refused Connect is logged with its reason (<see cref="ConnectRefusals"/>).</summary>
    private static void ExecuteConnectOrLogWhyNot(QueuePair queue, NvmeRequest request)
    {
        ExecuteConnect(queue, request);
        if (!request.Status.IsSuccess) ConnectRefusals.Log(queue, request);
    }

    private static void ExecuteConnect(QueuePair queue, NvmeRequest request)
    {
        var target = queue.Target;
        var sqe = request.Sqe;
        ReadOnlySpan<byte> data = request.Data.Span;
        if (Connect.RecordFormat(sqe) != 0) { request.Status = NvmeStatus.ConnectIncompatibleFormat; return; }

        ushort qid = Connect.QueueId(sqe);
        int entries = Connect.SqSize(sqe) + 1;
        string subsysNqn = Connect.SubsysNqn(data);
        string hostNqn = Connect.HostNqn(data);
        var subsystem = target.FindSubsystem(subsysNqn);
        if (subsystem == null)
        {
            FailInvalidParameter(request, inData: true, Connect.SubsysNqnOffset);
            return;
        }
        // An empty host NQN (spdk_nvme_perf sends one unless told) is no NQN: it gets in only where any host may.
        if (hostNqn.Length > 0 && !Nqn.IsValid(hostNqn, out _)) { FailInvalidParameter(request, inData: true, Connect.HostNqnOffset); return; }
        if (!subsystem.IsHostAllowed(hostNqn))
        {
            request.Status = NvmeStatus.ConnectInvalidHost;
            return;
        }
        // SQSIZE is 0's based and a queue needs at least two entries.
        if (entries < 2 || entries > target.Limits.MaxQueueEntries) { FailInvalidParameter(request, inData: false, SqSizeOffset); return; }

        var controller = qid == 0 ? ConnectAdmin(queue, request, subsystem, hostNqn, data) : ConnectIo(queue, request, subsystem, hostNqn, qid, data);
        if (controller == null) return;
        queue.OnConnected(controller, qid, entries, (Connect.Cattr(sqe) & Connect.CattrDisableSqFlowControl) != 0);
        request.Result = controller.Cntlid;
        if (controller.RequiresAuthentication)
        {
            // AUTHREQ.ATR: the host runs DH-HMAC-CHAP on this queue before anything else.
            queue.IsAuthenticated = false;
            request.Result |= Nvme.Auth.AuthCommand.ConnectAuthenticationRequired;
        }
        if (qid == 0)
        {
            controller.StartKeepAlive();
            target.Logger.LogInformation("controller {Cntlid} created on {Subsys} for host {HostNqn} from {Remote} (kato {Kato} ms)",
                controller.Cntlid, subsysNqn, hostNqn, queue.Transport.RemoteEndpoint, controller.KatoMs);
        }
    }

    private static Controller? ConnectAdmin(QueuePair queue, NvmeRequest request, Subsystem subsystem, string hostNqn, ReadOnlySpan<byte> data)
    {
        var target = queue.Target;
        if (Connect.Cntlid(data) != Connect.DynamicCntlid) { FailInvalidParameter(request, inData: true, Connect.CntlidOffset); return null; }
        var controller = target.CreateController(subsystem, hostNqn, Connect.HostId(data), Connect.Kato(request.Sqe));
        if (controller == null) { request.Status = NvmeStatus.ConnectControllerBusy; return null; }
        controller.RequiresAuthentication = subsystem.FindHostAuthentication(hostNqn) != null;
        controller.TryInstallQueue(queue, 0);
        return controller;
    }

    private static Controller? ConnectIo(QueuePair queue, NvmeRequest request, Subsystem subsystem, string hostNqn, ushort qid, ReadOnlySpan<byte> data)
    {
        var controller = queue.Target.FindController(Connect.Cntlid(data));
        if (controller == null || controller.Subsystem != subsystem || controller.HostNqn != hostNqn || controller.IsDiscovery)
        {
            FailInvalidParameter(request, inData: true, Connect.CntlidOffset);
            return null;
        }
        if (!controller.IsReady) { request.Status = NvmeStatus.CommandSequenceError; return null; }
        if (qid > controller.GrantedIoQueues || !controller.TryInstallQueue(queue, qid))
        {
            FailInvalidParameter(request, inData: false, QidOffset);
            return null;
        }
        return controller;
    }

    /// <summary>Connect Invalid Parameters with IATTR/IPO naming the field, so the host can say what was wrong.</summary>
    private static void FailInvalidParameter(NvmeRequest request, bool inData, ushort offset)
    {
        request.Status = NvmeStatus.ConnectInvalidParameters;
        request.Result = Connect.InvalidParameter(inData, offset);
        request.ErrorLocation = offset;
    }

    private static void ExecutePropertyGet(QueuePair queue, NvmeRequest request)
    {
        var target = queue.Target;
        var controller = queue.Controller!;
        var sqe = request.Sqe;
        uint offset = PropertyCommand.Offset(sqe);
        bool wide = PropertyCommand.Is8Bytes(sqe);
        ulong? value = offset switch
        {
            ControllerProperties.Cap when wide => ControllerProperties.BuildCap(target.Limits.MaxQueueEntries, target.Limits.ReadyTimeoutHalfSeconds),
            ControllerProperties.Vs when !wide => ControllerProperties.Version14,
            ControllerProperties.Cc when !wide => controller.Cc,
            ControllerProperties.Csts when !wide => controller.Csts,
            ControllerProperties.Nssr when !wide => 0,
            _ => null,
        };
        if (value is null) { request.Fail(NvmeStatus.InvalidField, SqeOffset.Cdw11); return; }
        request.Result = value.Value;
    }

    private static void ExecutePropertySet(QueuePair queue, NvmeRequest request)
    {
        var controller = queue.Controller!;
        var sqe = request.Sqe;
        uint offset = PropertyCommand.Offset(sqe);
        if (offset == ControllerProperties.Cc && !PropertyCommand.Is8Bytes(sqe))
            request.Status = controller.SetCc((uint)PropertyCommand.Value(sqe));
        else if (offset == ControllerProperties.Nssr)
            request.Status = NvmeStatus.Success; // NVM subsystem reset is not supported; writes are ignored as allowed
        else
            request.Fail(NvmeStatus.InvalidField, SqeOffset.Cdw11);
    }
}
