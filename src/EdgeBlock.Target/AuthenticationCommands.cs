using EdgeBlock.Nvme;
using EdgeBlock.Nvme.Auth;

namespace EdgeBlock.Target;

/// <summary>
/// Authentication Send (FCTYPE 05h) and Receive (06h) for DH-HMAC-CHAP (nvmet's fabrics-cmd-auth.c):
/// the command fields are checked here; the messages go to the queue's <see cref="DhchapTransaction"/>.
/// A message the protocol refuses is not a command error: the controller answers it with AUTH_Failure1.
/// </summary>
internal static class AuthenticationCommands
{
    /// <summary>Largest TL/AL taken: a Reply with an ffdhe8192 value is 1168 bytes, the Linux host receives into 4 KiB.</summary>
    public const int MaxMessageBytes = 8192;

    public static readonly NvmeCommand Send = new()
    {
        Code = (byte)FabricsCommandType.AuthenticationSend, Name = "Authentication Send", BeforeAuthentication = true,
        Parse = static (q, r) => ParseAuth(q, r, DataDirection.HostToController),
        Execute = static (q, r) => OffLoop(q, r, static (t, q, r) => t.Send(q, r)),
    };

    public static readonly NvmeCommand Receive = new()
    {
        Code = (byte)FabricsCommandType.AuthenticationReceive, Name = "Authentication Receive", BeforeAuthentication = true,
        Parse = static (q, r) => ParseAuth(q, r, DataDirection.ControllerToHost),
        Execute = static (q, r) => OffLoop(q, r, static (t, q, r) => t.Receive(q, r)),
    };

    /// <summary>
    /// Runs a step on the thread pool: a DH modular exponentiation takes milliseconds (ffdhe8192: tens to
    /// hundreds), and the receive loop it would otherwise block may be shared with other connections.
    /// </summary>
    private static ValueTask OffLoop(QueuePair queue, NvmeRequest request, Action<DhchapTransaction, QueuePair, NvmeRequest> step)
    {
        var transaction = queue.Authentication ??= new DhchapTransaction();
        return new ValueTask(Task.Run(() => step(transaction, queue, request)));
    }

    private static bool ParseAuth(QueuePair queue, NvmeRequest request, DataDirection direction)
    {
        if (!queue.IsConnected) return request.Fail(NvmeStatus.CommandSequenceError);
        if (queue.Controller!.IsDiscovery) return request.Fail(NvmeStatus.InvalidOpcode, SqeOffset.FabricsType);
        var sqe = request.Sqe;
        if (AuthCommand.Secp(sqe) != AuthCommand.SecpDhchap) return request.Fail(NvmeStatus.InvalidField, AuthCommand.SecpOffset);
        if (AuthCommand.Spsp0(sqe) != AuthCommand.Spsp) return request.Fail(NvmeStatus.InvalidField, AuthCommand.Spsp0Offset);
        if (AuthCommand.Spsp1(sqe) != AuthCommand.Spsp) return request.Fail(NvmeStatus.InvalidField, AuthCommand.Spsp1Offset);
        uint length = AuthCommand.Length(sqe);
        if (length == 0 || length > MaxMessageBytes) return request.Fail(NvmeStatus.InvalidField, AuthCommand.LengthOffset);
        return request.Accept(direction, (int)length);
    }
}
