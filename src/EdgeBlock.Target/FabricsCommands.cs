using EdgeBlock.Nvme;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Target;

/// <summary>Fabrics commands: Connect, Property Get/Set, Disconnect (nvmet's fabrics-cmd.c).</summary>
internal sealed class FabricsCommands(NvmeTarget target)
{
    // SQE byte offsets of Connect fields, reported as IPO when they are invalid.
    private const ushort QidOffset = 42, SqSizeOffset = 44;

    public bool Parse(QueuePair queue, NvmeRequest request)
    {
        var sqe = request.Sqe;
        switch (sqe.FabricsType)
        {
            case FabricsCommandType.Connect:
                if (queue.IsConnected) return request.Fail(NvmeStatus.CommandSequenceError);
                request.Kind = CommandKind.Connect;
                request.Direction = DataDirection.HostToController;
                request.DataLength = Connect.DataSize;
                return true;
            case FabricsCommandType.PropertyGet or FabricsCommandType.PropertySet:
                if (!queue.IsConnected) return request.Fail(NvmeStatus.CommandSequenceError);
                if (queue.Qid != 0) return request.Fail(NvmeStatus.InvalidOpcode);
                request.Kind = sqe.FabricsType == FabricsCommandType.PropertyGet ? CommandKind.PropertyGet : CommandKind.PropertySet;
                return true;
            case FabricsCommandType.Disconnect:
                if (!queue.IsConnected) return request.Fail(NvmeStatus.CommandSequenceError);
                request.Kind = CommandKind.Disconnect;
                return true;
            default:
                return request.Fail(NvmeStatus.InvalidOpcode, 4);
        }
    }

    public void Execute(QueuePair queue, NvmeRequest request)
    {
        switch (request.Kind)
        {
            case CommandKind.Connect: ExecuteConnect(queue, request); break;
            case CommandKind.PropertyGet: ExecutePropertyGet(queue.Controller!, request); break;
            case CommandKind.PropertySet: ExecutePropertySet(queue.Controller!, request); break;
            case CommandKind.Disconnect: request.DisconnectAfterCompletion = true; break;
        }
    }

    private void ExecuteConnect(QueuePair queue, NvmeRequest request)
    {
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
            target.Logger.LogWarning("connect from {Remote}: unknown subsystem {Subsys} (host {HostNqn})", queue.Transport.RemoteEndpoint, subsysNqn, hostNqn);
            FailInvalidParameter(request, inData: true, Connect.SubsysNqnOffset);
            return;
        }
        if (hostNqn.Length == 0 || !Nqn.IsValid(hostNqn, out _)) { FailInvalidParameter(request, inData: true, Connect.HostNqnOffset); return; }
        if (!subsystem.IsHostAllowed(hostNqn))
        {
            target.Logger.LogWarning("connect refused: host {HostNqn} from {Remote} is not allowed on subsystem {Subsys}", hostNqn, queue.Transport.RemoteEndpoint, subsysNqn);
            request.Status = NvmeStatus.ConnectInvalidHost;
            return;
        }
        // SQSIZE is 0's based and a queue needs at least two entries.
        if (entries < 2 || entries > target.Limits.MaxQueueEntries) { FailInvalidParameter(request, inData: false, SqSizeOffset); return; }

        var controller = qid == 0 ? ConnectAdmin(queue, request, subsystem, hostNqn, data) : ConnectIo(queue, request, subsystem, hostNqn, qid, data);
        if (controller == null) return;
        queue.OnConnected(controller, qid, entries, (Connect.Cattr(sqe) & Connect.CattrDisableSqFlowControl) != 0);
        request.Result = controller.Cntlid;
        if (qid == 0)
        {
            controller.StartKeepAlive();
            target.Logger.LogInformation("controller {Cntlid} created on {Subsys} for host {HostNqn} from {Remote} (kato {Kato} ms)",
                controller.Cntlid, subsysNqn, hostNqn, queue.Transport.RemoteEndpoint, controller.KatoMs);
        }
    }

    private Controller? ConnectAdmin(QueuePair queue, NvmeRequest request, Subsystem subsystem, string hostNqn, ReadOnlySpan<byte> data)
    {
        if (Connect.Cntlid(data) != Connect.DynamicCntlid) { FailInvalidParameter(request, inData: true, Connect.CntlidOffset); return null; }
        var controller = target.CreateController(subsystem, hostNqn, Connect.HostId(data), Connect.Kato(request.Sqe));
        if (controller == null) { request.Status = NvmeStatus.ConnectControllerBusy; return null; }
        controller.TryInstallQueue(queue, 0);
        return controller;
    }

    private Controller? ConnectIo(QueuePair queue, NvmeRequest request, Subsystem subsystem, string hostNqn, ushort qid, ReadOnlySpan<byte> data)
    {
        var controller = target.FindController(Connect.Cntlid(data));
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

    private void ExecutePropertyGet(Controller controller, NvmeRequest request)
    {
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
        if (value is null) { request.Fail(NvmeStatus.InvalidField, 44); return; }
        request.Result = value.Value;
    }

    private void ExecutePropertySet(Controller controller, NvmeRequest request)
    {
        var sqe = request.Sqe;
        uint offset = PropertyCommand.Offset(sqe);
        if (offset == ControllerProperties.Cc && !PropertyCommand.Is8Bytes(sqe))
            request.Status = controller.SetCc((uint)PropertyCommand.Value(sqe));
        else if (offset == ControllerProperties.Nssr)
            request.Status = NvmeStatus.Success; // NVM subsystem reset is not supported; writes are ignored as allowed
        else
            request.Fail(NvmeStatus.InvalidField, 44);
    }
}
