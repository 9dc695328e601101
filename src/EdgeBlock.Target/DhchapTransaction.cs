using System.Numerics;
using System.Security.Cryptography;
using EdgeBlock.Nvme.Auth;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Target;

/// <summary>
/// The controller's side of DH-HMAC-CHAP on one queue: AUTH_Negotiate → Challenge → Reply → Success1
/// (→ Success2 when the host authenticates the controller too). <see cref="_step"/> is the message
/// expected next. A wrong message, payload or response moves to Failure1: the next Authentication
/// Receive returns AUTH_Failure1 with the reason and the queue closes after it (nvmet makes the
/// controller fatal). A new AUTH_Negotiate restarts the transaction (re-authentication) with the host's
/// current secrets. Steps run on the thread pool; a lock keeps a host that pipelines them from racing.
/// </summary>
internal sealed class DhchapTransaction
{
    private readonly Lock _gate = new();
    private byte _step = DhchapMessage.Negotiate;
    private DhchapFailureReason _failure;
    private ushort _tid;
    private HostAuthentication? _keys;
    private DhchapHash _hash;
    private FfdheGroup? _group;
    private BigInteger _privateKey;
    private byte[]? _sharedSecret;
    private byte[]? _c1;
    private uint _s1;
    private byte[]? _c2;
    private uint _s2;

    public void Send(QueuePair queue, NvmeRequest request)
    {
        lock (_gate) SendLocked(queue, request);
    }

    public void Receive(QueuePair queue, NvmeRequest request)
    {
        lock (_gate) ReceiveLocked(queue, request);
    }

    private void SendLocked(QueuePair queue, NvmeRequest request)
    {
        ReadOnlySpan<byte> m = request.Data.Span;
        var controller = queue.Controller!;
        if (m.Length < DhchapMessage.FailureSize) { Fail(DhchapFailureReason.IncorrectPayload); return; }
        byte type = DhchapMessage.Type(m), id = DhchapMessage.Id(m);
        if (type == DhchapMessage.CommonMessages && id == DhchapMessage.Negotiate)
        {
            Negotiate(controller, m);
            return;
        }
        if (type != DhchapMessage.DhchapMessages || _step is DhchapMessage.Negotiate or DhchapMessage.Failure1) { Fail(DhchapFailureReason.IncorrectMessage); return; }
        if (DhchapMessage.TransactionId(m) != _tid) { Fail(DhchapFailureReason.IncorrectPayload); return; }
        switch (id)
        {
            case DhchapMessage.Reply when _step == DhchapMessage.Reply:
                Reply(queue, controller, m);
                break;
            case DhchapMessage.Success2 when _step == DhchapMessage.Success2:
                queue.IsAuthenticated = true;
                Log(queue, LogLevel.Information, "authenticated (bidirectional)");
                Reset();
                break;
            case DhchapMessage.Failure2 when _step == DhchapMessage.Success2:
                // The host did not accept the controller's response: nothing more runs on this queue.
                queue.IsAuthenticated = false;
                Log(queue, LogLevel.Warning, $"host refused the controller's response ({DhchapMessage.FailureExplanation(m)})");
                Reset();
                request.DisconnectAfterCompletion = true;
                break;
            default:
                Fail(DhchapFailureReason.IncorrectMessage);
                break;
        }
    }

    private void ReceiveLocked(QueuePair queue, NvmeRequest request)
    {
        Span<byte> buffer = request.Data.Span;
        buffer.Clear();
        switch (_step)
        {
            case DhchapMessage.Challenge:
                if (!Challenge(buffer)) goto default;
                _step = DhchapMessage.Reply;
                break;
            case DhchapMessage.Success1 when buffer.Length >= DhchapMessage.HeaderSize + DhchapNames.HashLength(_hash):
                Success1(queue, buffer);
                break;
            default:
                if (_step != DhchapMessage.Failure1) _failure = DhchapFailureReason.Failed; // a receive out of turn
                if (buffer.Length >= DhchapMessage.FailureSize) DhchapMessage.WriteFailure(buffer, DhchapMessage.Failure1, _tid, _failure);
                Log(queue, LogLevel.Warning, $"authentication failed: {_failure}");
                queue.IsAuthenticated = false;
                Reset();
                request.DisconnectAfterCompletion = true;
                break;
        }
    }

    private void Negotiate(Controller controller, ReadOnlySpan<byte> m)
    {
        Reset();
        _tid = DhchapMessage.TransactionId(m);
        if (m.Length < DhchapMessage.NegotiateSize) { Fail(DhchapFailureReason.IncorrectPayload); return; }
        // Read the secrets now: a re-authentication after a secret change uses the new ones.
        _keys = controller.Subsystem.FindHostAuthentication(controller.HostNqn);
        if (_keys == null) { Fail(DhchapFailureReason.NotUsable); return; }
        if (DhchapMessage.SecureChannel(m) != DhchapMessage.NoSecureChannel) { Fail(DhchapFailureReason.ConcatMismatch); return; }
        if (DhchapMessage.ProtocolDescriptors(m) != 1) { Fail(DhchapFailureReason.HashUnusable); return; }
        if (DhchapMessage.DescriptorAuthId(m) != DhchapMessage.DhchapAuthId || !DhchapMessage.DescriptorListsFit(m)) { Fail(DhchapFailureReason.IncorrectPayload); return; }
        // The hash and group configured for the host, if the host offers them: no silent downgrade.
        if (!DhchapMessage.OfferedHashes(m).Contains((byte)_keys.Hash)) { Fail(DhchapFailureReason.HashUnusable); return; }
        if (!DhchapMessage.OfferedGroups(m).Contains((byte)_keys.DhGroup)) { Fail(DhchapFailureReason.DhGroupUnusable); return; }
        _hash = _keys.Hash;
        _group = FfdheGroup.For(_keys.DhGroup);
        _step = DhchapMessage.Challenge;
    }

    private bool Challenge(Span<byte> buffer)
    {
        int hl = DhchapNames.HashLength(_hash);
        _c1 = RandomNumberGenerator.GetBytes(hl);
        _s1 = Dhchap.NewSequenceNumber();
        byte[] publicValue = [];
        if (_group != null) (_privateKey, publicValue) = _group.GenerateKeyPair();
        if (buffer.Length < DhchapMessage.HeaderSize + hl + publicValue.Length) { _failure = DhchapFailureReason.IncorrectPayload; return false; }
        DhchapMessage.WriteChallenge(buffer, _tid, _hash, _keys!.DhGroup, _s1, _c1, publicValue);
        return true;
    }

    private void Reply(QueuePair queue, Controller controller, ReadOnlySpan<byte> m)
    {
        int hl = DhchapNames.HashLength(_hash);
        if (m.Length < DhchapMessage.HeaderSize || DhchapMessage.HashLength(m) != hl) { Fail(DhchapFailureReason.IncorrectPayload); return; }
        int dhvlen = DhchapMessage.DhValueLength(m);
        if (DhchapMessage.HeaderSize + 2 * hl + dhvlen > m.Length) { Fail(DhchapFailureReason.IncorrectPayload); return; }
        var body = m[DhchapMessage.HeaderSize..];
        byte[] challenge = _c1!;
        if (_group != null)
        {
            if (!_group.TryComputeSharedSecret(_privateKey, body.Slice(2 * hl, dhvlen), out _sharedSecret)) { Fail(DhchapFailureReason.DhGroupUnusable); return; }
            challenge = Dhchap.AugmentChallenge(_hash, _sharedSecret, _c1!);
        }
        else if (dhvlen != 0) { Fail(DhchapFailureReason.IncorrectPayload); return; }

        byte[] key = _keys!.HostKey.TransformWith(controller.HostNqn);
        byte[] expected = Dhchap.HostResponse(_hash, key, challenge, _s1, _tid, controller.HostNqn, controller.Subsystem.NqnName);
        CryptographicOperations.ZeroMemory(key);
        if (!CryptographicOperations.FixedTimeEquals(expected, body[..hl]))
        {
            Log(queue, LogLevel.Warning, "host response does not match its secret");
            Fail(DhchapFailureReason.Failed);
            return;
        }
        _s2 = DhchapMessage.SequenceNumber(m);
        bool bidirectional = DhchapMessage.ChallengeValid(m) && _s2 != 0;
        if (bidirectional)
        {
            if (_keys.ControllerKey == null)
            {
                Log(queue, LogLevel.Warning, "host asks the controller to authenticate, but the host has no controller secret configured");
                Fail(DhchapFailureReason.Failed);
                return;
            }
            _c2 = body.Slice(hl, hl).ToArray();
        }
        else
        {
            queue.IsAuthenticated = true;
            Log(queue, LogLevel.Information, "authenticated");
        }
        _step = DhchapMessage.Success1;
    }

    private void Success1(QueuePair queue, Span<byte> buffer)
    {
        var controller = queue.Controller!;
        int hl = DhchapNames.HashLength(_hash);
        byte[] response = [];
        if (_c2 != null)
        {
            byte[] challenge = _sharedSecret != null ? Dhchap.AugmentChallenge(_hash, _sharedSecret, _c2) : _c2;
            byte[] key = _keys!.ControllerKey!.TransformWith(controller.Subsystem.NqnName);
            response = Dhchap.ControllerResponse(_hash, key, challenge, _s2, _tid, controller.HostNqn, controller.Subsystem.NqnName);
            CryptographicOperations.ZeroMemory(key);
        }
        DhchapMessage.WriteSuccess1(buffer, _tid, hl, response);
        if (_c2 != null) _step = DhchapMessage.Success2;
        else Reset();
    }

    private void Fail(DhchapFailureReason reason)
    {
        _failure = reason;
        _step = DhchapMessage.Failure1;
    }

    /// <summary>Forgets the transaction's secrets; the next message must be a negotiate.</summary>
    private void Reset()
    {
        if (_sharedSecret != null) CryptographicOperations.ZeroMemory(_sharedSecret);
        _sharedSecret = null;
        _privateKey = BigInteger.Zero;
        _c1 = _c2 = null;
        _keys = null;
        _group = null;
        _step = DhchapMessage.Negotiate;
    }

    private static void Log(QueuePair queue, LogLevel level, string what)
    {
        var c = queue.Controller!;
        queue.Target.Logger.Log(level, "DH-HMAC-CHAP controller {Cntlid} qid {Qid} host {HostNqn} from {Remote}: {What}",
            c.Cntlid, queue.Qid, c.HostNqn, queue.Transport.RemoteEndpoint, what);
    }
}
