using System.Security.Cryptography;
using EdgeBlock.Nvme;
using EdgeBlock.Nvme.Auth;

namespace EdgeBlock.Initiator;

/// <summary>How one queue's DH-HMAC-CHAP ended: success, an NVMe status of a command, or an AUTH_Failure reason.</summary>
public readonly record struct DhchapOutcome(NvmeCompletion Completion, DhchapFailureReason Failure, string? Problem)
{
    public bool IsSuccess => Completion.IsSuccess && Failure == DhchapFailureReason.None && Problem == null;
}

/// <summary>
/// The host's side of DH-HMAC-CHAP on one queue, the way the Linux host runs it: AUTH_Negotiate offering
/// every hash and DH group, Challenge, Reply (with a challenge for the controller when a controller secret
/// is set), Success1 (checking the controller's response), Success2 or AUTH_Failure2.
/// </summary>
public static class DhchapHost
{
    /// <summary>The Linux host's receive buffer (CHAP_BUF_SIZE).</summary>
    private const int ReceiveBytes = 4096;
    private static int s_transaction;

    public static async Task<DhchapOutcome> AuthenticateAsync(NvmeTcpQueue queue, string hostNqn, string subsysNqn,
        DhchapKey hostKey, DhchapKey? controllerKey, IReadOnlyList<DhchapHash>? hashes = null, IReadOnlyList<DhchapDhGroup>? groups = null)
    {
        ushort tid = (ushort)Interlocked.Increment(ref s_transaction);
        var buffer = new byte[ReceiveBytes];
        int n = DhchapMessage.WriteNegotiate(buffer, tid, (hashes ?? DhchapNames.AllHashes).ToArray(), (groups ?? DhchapNames.AllGroups).ToArray());
        var c = await SendAsync(queue, buffer.AsMemory(0, n)).ConfigureAwait(false);
        if (!c.IsSuccess) return new(c, default, "Authentication Send (negotiate) failed");

        c = await ReceiveAsync(queue, buffer).ConfigureAwait(false);
        var check = Expect(c, buffer, DhchapMessage.Challenge, tid);
        if (check is { } failed) return failed;
        var challenge = ParseChallenge(buffer, out string? problem);
        if (problem != null) return await FailAsync(queue, c, tid, DhchapFailureReason.IncorrectPayload, problem).ConfigureAwait(false);
        var (hash, group, s1, c1, controllerPublic) = challenge;
        int hl = DhchapNames.HashLength(hash);

        byte[] publicValue = [], sharedSecret = [];
        byte[] c1Used = c1;
        if (group != null)
        {
            var (x, pub) = group.GenerateKeyPair();
            publicValue = pub;
            if (!group.TryComputeSharedSecret(x, controllerPublic, out sharedSecret))
                return await FailAsync(queue, c, tid, DhchapFailureReason.DhGroupUnusable, "the controller's DH value is not valid").ConfigureAwait(false);
            c1Used = Dhchap.AugmentChallenge(hash, sharedSecret, c1);
        }
        byte[] key = hostKey.TransformWith(hostNqn);
        byte[] response = Dhchap.HostResponse(hash, key, c1Used, s1, tid, hostNqn, subsysNqn);
        CryptographicOperations.ZeroMemory(key);
        byte[] c2 = controllerKey != null ? RandomNumberGenerator.GetBytes(hl) : [];
        uint s2 = controllerKey != null ? Dhchap.NewSequenceNumber() : 0;
        n = DhchapMessage.WriteReply(buffer, tid, response, c2, s2, publicValue);
        c = await SendAsync(queue, buffer.AsMemory(0, n)).ConfigureAwait(false);
        if (!c.IsSuccess) return new(c, default, "Authentication Send (reply) failed");

        c = await ReceiveAsync(queue, buffer).ConfigureAwait(false);
        check = Expect(c, buffer, DhchapMessage.Success1, tid);
        if (check is { } refused) return refused;
        if (DhchapMessage.HashLength(buffer) != hl) return await FailAsync(queue, c, tid, DhchapFailureReason.HashUnusable, "Success1 has the wrong hash length").ConfigureAwait(false);
        if (controllerKey == null) return new(c, default, null);

        // Bidirectional: the controller must prove it knows its own secret.
        byte[] c2Used = sharedSecret.Length > 0 ? Dhchap.AugmentChallenge(hash, sharedSecret, c2) : c2;
        key = controllerKey.TransformWith(subsysNqn);
        byte[] expected = Dhchap.ControllerResponse(hash, key, c2Used, s2, tid, hostNqn, subsysNqn);
        CryptographicOperations.ZeroMemory(key);
        if (!DhchapMessage.ResponseValid(buffer) || !CryptographicOperations.FixedTimeEquals(expected, buffer.AsSpan(DhchapMessage.HeaderSize, hl)))
            return await FailAsync(queue, c, tid, DhchapFailureReason.Failed, "the controller's response does not match the controller secret").ConfigureAwait(false);
        n = DhchapMessage.WriteSuccess2(buffer, tid);
        c = await SendAsync(queue, buffer.AsMemory(0, n)).ConfigureAwait(false);
        return new(c, default, c.IsSuccess ? null : "Authentication Send (success2) failed");
    }

    private static DhchapOutcome? Expect(NvmeCompletion c, byte[] m, byte id, ushort tid)
    {
        if (!c.IsSuccess) return new(c, default, "Authentication Receive failed");
        if (DhchapMessage.Type(m) == DhchapMessage.CommonMessages && DhchapMessage.Id(m) == DhchapMessage.Failure1)
        {
            var reason = DhchapMessage.FailureExplanation(m);
            return new(c, reason == DhchapFailureReason.None ? DhchapFailureReason.Failed : reason, $"the controller answered AUTH_Failure1 ({reason})");
        }
        if (DhchapMessage.Type(m) != DhchapMessage.DhchapMessages || DhchapMessage.Id(m) != id || DhchapMessage.TransactionId(m) != tid)
            return new(c, DhchapFailureReason.IncorrectMessage, $"unexpected message {DhchapMessage.Type(m):X2}h/{DhchapMessage.Id(m):X2}h");
        return null;
    }

    private static (DhchapHash Hash, FfdheGroup? Group, uint S1, byte[] C1, byte[] DhValue) ParseChallenge(byte[] m, out string? problem)
    {
        problem = null;
        var hash = DhchapMessage.ChallengeHash(m);
        int hl = DhchapNames.HashLength(hash);
        var groupId = DhchapMessage.ChallengeGroup(m);
        int dhvlen = DhchapMessage.DhValueLength(m);
        var group = FfdheGroup.For(groupId);
        if (hl == 0 || DhchapMessage.HashLength(m) != hl) problem = "the challenge's hash is unknown or its length wrong";
        else if (!DhchapNames.IsDefined(groupId)) problem = "the challenge's DH group is unknown";
        else if (DhchapMessage.HeaderSize + hl + dhvlen > m.Length) problem = "the challenge is longer than its message";
        else if ((group == null) != (dhvlen == 0)) problem = "the challenge's DH value does not match its group";
        if (problem != null) return default;
        return (hash, group, DhchapMessage.SequenceNumber(m), m.AsSpan(DhchapMessage.HeaderSize, hl).ToArray(), m.AsSpan(DhchapMessage.HeaderSize + hl, dhvlen).ToArray());
    }

    /// <summary>Tells the controller (AUTH_Failure2) and reports the failure.</summary>
    private static async Task<DhchapOutcome> FailAsync(NvmeTcpQueue queue, NvmeCompletion c, ushort tid, DhchapFailureReason reason, string problem)
    {
        var m = new byte[DhchapMessage.FailureSize];
        DhchapMessage.WriteFailure(m, DhchapMessage.Failure2, tid, reason);
        try { await SendAsync(queue, m).ConfigureAwait(false); }
        catch (IOException) { /* the controller may have closed the queue already */ }
        return new(c, reason, problem);
    }

    private static ValueTask<NvmeCompletion> SendAsync(NvmeTcpQueue queue, Memory<byte> message)
    {
        Span<byte> sqe = stackalloc byte[SubmissionQueueEntry.Size];
        NvmeCommands.AuthenticationSend(sqe, message.Length);
        return queue.SubmitAsync(sqe, message, TransferDirection.HostToController);
    }

    private static ValueTask<NvmeCompletion> ReceiveAsync(NvmeTcpQueue queue, byte[] buffer)
    {
        Span<byte> sqe = stackalloc byte[SubmissionQueueEntry.Size];
        NvmeCommands.AuthenticationReceive(sqe, buffer.Length);
        return queue.SubmitAsync(sqe, buffer, TransferDirection.ControllerToHost);
    }
}
