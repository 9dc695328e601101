using System.Buffers.Binary;
using EdgeBlock.Initiator;
using EdgeBlock.Nvme;
using EdgeBlock.Nvme.Auth;
using EdgeBlock.Target.Tests.Support;

namespace EdgeBlock.Target.Tests;

/// <summary>DH-HMAC-CHAP (Authentication Send/Receive) between the target and the .NET initiator.</summary>
public sealed class AuthenticationCommandsTests
{
    private static readonly DhchapKey HostKey = DhchapKey.Generate(DhchapHash.Sha256);
    private static readonly DhchapKey ControllerKey = DhchapKey.Generate();

    private static TestTarget StartWithSecret(DhchapHash hash = DhchapHash.Sha256, DhchapDhGroup group = DhchapDhGroup.Null, bool bidirectional = false)
    {
        var t = TestTarget.Start(allowAnyHost: false);
        t.Subsystem.AllowHost(TestTarget.HostNqn);
        t.Subsystem.SetHostAuthentication(TestTarget.HostNqn, new HostAuthentication(HostKey, bidirectional ? ControllerKey : null, hash, group));
        return t;
    }

    private static async Task AssertWriteReadAsync(NvmeController host)
    {
        var data = new byte[TestTarget.BlockSize];
        Random.Shared.NextBytes(data);
        Assert.True((await host.WriteAsync(1, 7, 1, data, qid: 1).Within()).IsSuccess);
        var back = new byte[TestTarget.BlockSize];
        Assert.True((await host.ReadAsync(1, 7, 1, back, qid: 2).Within()).IsSuccess);
        Assert.Equal(data, back);
    }

    [Theory]
    [InlineData(DhchapHash.Sha256, DhchapDhGroup.Null, false)]
    [InlineData(DhchapHash.Sha384, DhchapDhGroup.Null, true)]
    [InlineData(DhchapHash.Sha512, DhchapDhGroup.Null, false)]
    [InlineData(DhchapHash.Sha256, DhchapDhGroup.Ffdhe2048, false)]
    [InlineData(DhchapHash.Sha256, DhchapDhGroup.Ffdhe2048, true)]
    [InlineData(DhchapHash.Sha512, DhchapDhGroup.Ffdhe3072, true)]
    public async Task Connect_RightSecrets_AuthenticatesEveryQueueAndRunsIo(DhchapHash hash, DhchapDhGroup group, bool bidirectional)
    {
        await using var t = StartWithSecret(hash, group, bidirectional);
        var options = new NvmeConnectOptions { DhchapSecret = HostKey, DhchapControllerSecret = bidirectional ? ControllerKey : null };

        await using var host = await t.ConnectAsync(ioQueues: 2, options: options);

        var controller = t.TargetController(host.Cntlid);
        Assert.True(controller.RequiresAuthentication);
        Assert.All(controller.Queues, q => Assert.True(q.IsAuthenticated));
        await AssertWriteReadAsync(host);
    }

    [Fact]
    public async Task Connect_WrongSecret_IsRefusedWithFailure1()
    {
        await using var t = StartWithSecret();
        var result = await t.TryConnectAsync(options: new NvmeConnectOptions { DhchapSecret = DhchapKey.Generate(DhchapHash.Sha256) });

        Assert.False(result.IsSuccess);
        Assert.Equal(DhchapFailureReason.Failed, result.AuthenticationFailure);
        Assert.StartsWith("Authentication (admin queue)", result.FailedStep);
    }

    [Fact]
    public async Task Connect_WrongControllerSecret_IsDetectedByTheHost()
    {
        await using var t = StartWithSecret(bidirectional: true);
        var options = new NvmeConnectOptions { DhchapSecret = HostKey, DhchapControllerSecret = DhchapKey.Generate() };

        var result = await t.TryConnectAsync(options: options);

        Assert.False(result.IsSuccess);
        Assert.Contains("controller's response does not match", result.FailedStep);
        Assert.Equal(DhchapFailureReason.Failed, result.AuthenticationFailure);
    }

    [Fact]
    public async Task Connect_NoSecretOnTheHost_FailsAtAuthentication()
    {
        await using var t = StartWithSecret();
        var result = await t.TryConnectAsync();

        Assert.False(result.IsSuccess);
        Assert.Contains("requires DH-HMAC-CHAP", result.FailedStep);
    }

    [Fact]
    public async Task Connect_HostWithoutSecretConfigured_DoesNotAskForAuthentication()
    {
        await using var t = StartWithSecret();
        t.Subsystem.AllowHost(TestTarget.OtherHostNqn);
        await using var host = await t.ConnectAsync(hostNqn: TestTarget.OtherHostNqn);

        Assert.False(t.TargetController(host.Cntlid).RequiresAuthentication);
    }

    // ---- raw admin queue: what an unauthenticated or misbehaving host gets -------------------

    private static async Task<(NvmeTcpQueue Queue, NvmeCompletion Connect)> ConnectAdminAsync(TestTarget t)
    {
        var queue = await NvmeTcpQueue.ConnectAsync(TestTarget.Address, t.Port, new NvmeTcpQueueOptions { QueueDepth = 32 });
        var data = new byte[Connect.DataSize];
        Connect.WriteData(data, Guid.NewGuid(), Connect.DynamicCntlid, TestTarget.SubsysNqn, TestTarget.HostNqn);
        var sqe = new byte[SubmissionQueueEntry.Size];
        NvmeCommands.Connect(sqe, 0, 32, 0);
        var c = await queue.SubmitAsync(sqe, data, TransferDirection.HostToController).Within();
        Assert.True(c.IsSuccess);
        return (queue, c);
    }

    private static Task<NvmeCompletion> SendAsync(NvmeTcpQueue queue, byte[] message)
    {
        var sqe = new byte[SubmissionQueueEntry.Size];
        NvmeCommands.AuthenticationSend(sqe, message.Length);
        return queue.SubmitAsync(sqe, message, TransferDirection.HostToController).Within();
    }

    private static async Task<byte[]> ReceiveAsync(NvmeTcpQueue queue)
    {
        var buffer = new byte[4096];
        var sqe = new byte[SubmissionQueueEntry.Size];
        NvmeCommands.AuthenticationReceive(sqe, buffer.Length);
        Assert.True((await queue.SubmitAsync(sqe, buffer, TransferDirection.ControllerToHost).Within()).IsSuccess);
        return buffer;
    }

    private static byte[] Negotiate(ushort tid = 1)
    {
        var m = new byte[DhchapMessage.NegotiateSize];
        DhchapMessage.WriteNegotiate(m, tid, DhchapNames.AllHashes, DhchapNames.AllGroups);
        return m;
    }

    [Fact]
    public async Task Connect_HostWithSecret_SetsAuthreqAtr()
    {
        await using var t = StartWithSecret();
        var (queue, connect) = await ConnectAdminAsync(t);
        await using var _ = queue;

        Assert.Equal(AuthCommand.ConnectAuthenticationRequired, connect.Dw0 & AuthCommand.ConnectAuthenticationRequired);
    }

    [Fact]
    public async Task CommandBeforeAuthentication_ReturnsAuthenticationRequired()
    {
        await using var t = StartWithSecret();
        var (queue, _) = await ConnectAdminAsync(t);
        await using var __ = queue;

        var sqe = new byte[SubmissionQueueEntry.Size];
        NvmeCommands.PropertyGet(sqe, ControllerProperties.Cap, wide: true);
        var property = await queue.SubmitAsync(sqe).Within();
        NvmeCommands.Identify(sqe, IdentifyCns.Controller);
        var identify = await queue.SubmitAsync(sqe, new byte[4096], TransferDirection.ControllerToHost).Within();

        foreach (var c in new[] { property, identify })
        {
            Assert.Equal(StatusCodeType.CommandSpecific, c.Status.Sct);
            Assert.Equal(0x91, c.Status.Sc);
            Assert.True(c.Status.Dnr);
        }
    }

    [Fact]
    public async Task Reply_WithoutChallenge_IsAnsweredWithFailure1IncorrectMessage()
    {
        await using var t = StartWithSecret();
        var (queue, _) = await ConnectAdminAsync(t);
        await using var __ = queue;
        var reply = new byte[DhchapMessage.HeaderSize + 64];
        DhchapMessage.WriteReply(reply, 1, new byte[32], [], 0, []);

        Assert.True((await SendAsync(queue, reply)).IsSuccess);
        var answer = await ReceiveAsync(queue);

        Assert.Equal(DhchapMessage.CommonMessages, DhchapMessage.Type(answer));
        Assert.Equal(DhchapMessage.Failure1, DhchapMessage.Id(answer));
        Assert.Equal(DhchapFailureReason.IncorrectMessage, DhchapMessage.FailureExplanation(answer));
    }

    [Theory]
    [InlineData("short negotiate", DhchapFailureReason.IncorrectPayload)]
    [InlineData("secure channel", DhchapFailureReason.ConcatMismatch)]
    [InlineData("no sha256 offered", DhchapFailureReason.HashUnusable)]
    [InlineData("reply too short for its hl", DhchapFailureReason.IncorrectPayload)]
    [InlineData("reply with another transaction id", DhchapFailureReason.IncorrectPayload)]
    [InlineData("wrong response", DhchapFailureReason.Failed)]
    public async Task MalformedMessage_IsAnsweredWithTheRightFailure1(string what, DhchapFailureReason expected)
    {
        await using var t = StartWithSecret();
        var (queue, _) = await ConnectAdminAsync(t);
        await using var __ = queue;
        var negotiate = Negotiate();
        switch (what)
        {
            case "short negotiate": negotiate = negotiate[..20]; break;
            case "secure channel": negotiate[6] = 1; break;
            case "no sha256 offered": negotiate[12] = (byte)DhchapHash.Sha512; break;
        }
        Assert.True((await SendAsync(queue, negotiate)).IsSuccess);
        if (what.StartsWith("reply") || what == "wrong response")
        {
            var challenge = await ReceiveAsync(queue);
            Assert.Equal(DhchapMessage.Challenge, DhchapMessage.Id(challenge));
            var reply = new byte[DhchapMessage.HeaderSize + 64];
            DhchapMessage.WriteReply(reply, what.Contains("transaction") ? (ushort)2 : (ushort)1, new byte[32], [], 0, []);
            if (what.Contains("too short")) reply = reply[..40];
            Assert.True((await SendAsync(queue, reply)).IsSuccess);
        }
        var answer = await ReceiveAsync(queue);

        Assert.Equal(DhchapMessage.Failure1, DhchapMessage.Id(answer));
        Assert.Equal(expected, DhchapMessage.FailureExplanation(answer));
        Assert.Equal(1, BinaryPrimitives.ReadUInt16LittleEndian(answer.AsSpan(4)));
    }

    [Fact]
    public async Task PipelinedAuthenticationCommands_NeverCrashTheTarget()
    {
        await using var t = StartWithSecret(group: DhchapDhGroup.Ffdhe2048);
        var (queue, _) = await ConnectAdminAsync(t);
        await using (queue)
        {
            // A hostile host does not wait for completions: the steps race for the queue's transaction.
            var all = new List<Task>();
            for (int i = 0; i < 4; i++)
            {
                all.Add(SendAsync(queue, Negotiate()));
                all.Add(ReceiveAsync(queue));
            }
            try { await Task.WhenAll(all).WaitAsync(Waits.Command); }
            catch (Exception ex) when (ex is IOException or Xunit.Sdk.XunitException) { /* refused or closed: both fine */ }
        }

        await using var host = await t.ConnectAsync(options: new NvmeConnectOptions { DhchapSecret = HostKey });
        await AssertWriteReadAsync(host);
    }

    [Fact]
    public async Task AuthenticationSend_WrongSecp_ReturnsInvalidField()
    {
        await using var t = StartWithSecret();
        var (queue, _) = await ConnectAdminAsync(t);
        await using var __ = queue;
        var sqe = new byte[SubmissionQueueEntry.Size];
        NvmeCommands.AuthenticationSend(sqe, DhchapMessage.NegotiateSize);
        sqe[AuthCommand.SecpOffset] = 0xEA;

        var c = await queue.SubmitAsync(sqe, Negotiate(), TransferDirection.HostToController).Within();

        Assert.Equal(NvmeStatus.InvalidField, c.Status);
    }

    [Fact]
    public async Task Reauthenticate_AfterTheSecretChanged_SucceedsWithTheNewOneOnly()
    {
        await using var t = StartWithSecret();
        await using var host = await t.ConnectAsync(options: new NvmeConnectOptions { DhchapSecret = HostKey });
        var newKey = DhchapKey.Generate(DhchapHash.Sha256);
        t.Subsystem.SetHostAuthentication(TestTarget.HostNqn, new HostAuthentication(newKey));

        var withNew = await host.ReauthenticateAsync(newKey);

        Assert.True(withNew.IsSuccess, withNew.Problem);
        await AssertWriteReadAsync(host);
        var withOld = await host.ReauthenticateAsync(HostKey);
        Assert.Equal(DhchapFailureReason.Failed, withOld.Failure);
    }
}
