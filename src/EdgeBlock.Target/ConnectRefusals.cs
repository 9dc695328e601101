using EdgeBlock.Nvme;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Target;

/// <summary>
/// Says why a Connect was refused, in the log: a host only gets a status (and IATTR/IPO), which rarely tells its
/// operator what to change. The reason is read back from the refused command's status, error location and data, so
/// the checks in <see cref="FabricsCommands"/> stay as they are.
/// </summary>
internal static class ConnectRefusals
{
    public static void Log(QueuePair queue, NvmeRequest request)
    {
        ReadOnlySpan<byte> data = request.Data.Span;
        bool hasData = data.Length >= Connect.DataSize;
        string subsysNqn = hasData ? Connect.SubsysNqn(data) : "";
        string hostNqn = hasData ? Connect.HostNqn(data) : "";
        queue.Target.Logger.LogWarning("connect refused ({Status}): host {HostNqn} from {Remote}, subsystem {Subsys}, queue {Qid}: {Reason}",
            request.Status, hostNqn.Length == 0 ? "(empty NQN)" : hostNqn, queue.Transport.RemoteEndpoint, subsysNqn,
            Connect.QueueId(request.Sqe), Reason(queue.Target, request, hostNqn, hasData));
    }

    private static string Reason(NvmeTarget target, NvmeRequest request, string hostNqn, bool hasData)
    {
        var sqe = request.Sqe;
        var status = request.Status;
        if (status == NvmeStatus.ConnectIncompatibleFormat) return $"record format {Connect.RecordFormat(sqe)} is not 0";
        if (status == NvmeStatus.ConnectInvalidHost)
            return hostNqn.Length == 0
                ? "an empty host NQN may connect only where any host may; this subsystem has an access list"
                : "the host is not on the subsystem's access list";
        if (status == NvmeStatus.ConnectControllerBusy) return "no controller ID is free";
        if (status == NvmeStatus.CommandSequenceError) return "the controller is not ready (CC.EN = 1 and CSTS.RDY come first)";
        if (status != NvmeStatus.ConnectInvalidParameters || !hasData) return "refused";
        ushort cntlid = Connect.Cntlid(request.Data.Span);
        ushort qid = Connect.QueueId(sqe);
        return request.ErrorLocation switch
        {
            Connect.SubsysNqnOffset => "no such subsystem",
            Connect.HostNqnOffset => Nqn.IsValid(hostNqn, out string why) ? "the host NQN is not valid" : $"the host NQN is not valid: {why}",
            Connect.CntlidOffset when qid == 0 => $"an admin queue asks for the dynamic controller FFFFh, not {cntlid:X4}h",
            Connect.CntlidOffset => $"controller {cntlid} is not this host's on this subsystem",
            FabricsCommands.SqSizeOffset => $"SQSIZE {Connect.SqSize(sqe) + 1} entries is not 2..{target.Limits.MaxQueueEntries}",
            FabricsCommands.QidOffset => $"queue {qid} is beyond the I/O queues granted, or connected already",
            _ => "invalid parameters",
        };
    }
}
