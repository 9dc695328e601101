using EdgeBlock.Nvme;

namespace EdgeBlock.Initiator;

/// <summary>
/// A controller as the host sees it after connecting: the admin queue and the I/O queues, with the
/// commands a host uses. NVMe statuses are values in the returned completions; a lost or terminated
/// connection throws IOException. I/O methods take a qid (1..IoQueues.Count) or 0 for round robin.
/// </summary>
public sealed partial class NvmeController : IAsyncDisposable
{
    private readonly NvmeTcpQueue _admin;
    private NvmeTcpQueue[] _io = [];
    private int _nextQueue;
    private CancellationTokenSource? _keepAliveStop;
    private Task _keepAliveLoop = Task.CompletedTask;

    private NvmeController(NvmeTcpQueue admin, string host, int port, string subsystemNqn, string hostNqn, Guid hostId, uint katoMs)
    {
        _admin = admin;
        Host = host;
        Port = port;
        SubsystemNqn = subsystemNqn;
        HostNqn = hostNqn;
        HostId = hostId;
        KatoMs = katoMs;
    }

    public string Host { get; }
    public int Port { get; }
    public string SubsystemNqn { get; }
    public string HostNqn { get; }
    public Guid HostId { get; }
    public uint KatoMs { get; }
    /// <summary>Controller ID returned by the admin Connect.</summary>
    public ushort Cntlid { get; private set; }
    /// <summary>The CAP property read while connecting.</summary>
    public ulong Cap { get; private set; }
    /// <summary>The VS property read while connecting.</summary>
    public uint Version { get; private set; }
    public IdentifyControllerData Identify { get; private set; } = new();
    public bool IsDiscovery => Identify.ControllerType == 2;
    /// <summary>Largest data transfer per command (MDTS).</summary>
    public long MaxTransferBytes => IdentifyControllerReader.MaxTransferBytes(Identify);

    public NvmeTcpQueue AdminQueue => _admin;
    public IReadOnlyList<NvmeTcpQueue> IoQueues => _io;

    /// <summary>
    /// Connects the way the Linux host does: admin Connect (CNTLID FFFFh), Property Get CAP and VS,
    /// Property Set CC.EN = 1, wait for CSTS.RDY, Identify Controller, Set Features Number of Queues,
    /// then a Connect on each I/O queue with the controller ID.
    /// </summary>
    public static async Task<NvmeConnectResult> ConnectAsync(string host, int port, string subsysNqn, string hostNqn,
        int ioQueues = 1, int queueSize = 128, bool headerDigest = false, bool dataDigest = false,
        NvmeConnectOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new NvmeConnectOptions();
        if (ioQueues < 0 || ioQueues > 0xFFFE) throw new ArgumentOutOfRangeException(nameof(ioQueues), ioQueues, "0..65534 I/O queues");
        if (queueSize is < 2 or > NvmeTcpQueue.MaxQueueDepth) throw new ArgumentOutOfRangeException(nameof(queueSize), queueSize, $"2..{NvmeTcpQueue.MaxQueueDepth} entries");
        var adminOptions = new NvmeTcpQueueOptions
        {
            QueueDepth = options.AdminQueueDepth,
            HeaderDigest = headerDigest,
            DataDigest = dataDigest,
            InlineCompletions = options.InlineCompletions,
            ConnectTimeout = options.ConnectTimeout,
        };
        var admin = await NvmeTcpQueue.ConnectAsync(host, port, adminOptions, cancellationToken).ConfigureAwait(false);
        var controller = new NvmeController(admin, host, port, subsysNqn, hostNqn, options.HostId ?? Guid.NewGuid(), options.KatoMs);
        try
        {
            var failed = await controller.InitializeAsync(ioQueues, queueSize, adminOptions, options, cancellationToken).ConfigureAwait(false);
            if (failed != null)
            {
                await controller.DisposeAsync().ConfigureAwait(false);
                return failed;
            }
            return new NvmeConnectResult(default, null, controller);
        }
        catch
        {
            await controller.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async Task<NvmeConnectResult?> InitializeAsync(int ioQueues, int queueSize, NvmeTcpQueueOptions adminOptions, NvmeConnectOptions options, CancellationToken ct)
    {
        _options = options;
        var c = await ConnectQueueAsync(_admin, 0, adminOptions.QueueDepth, Nvme.Connect.DynamicCntlid, KatoMs, options.DisableSqFlowControl).ConfigureAwait(false);
        if (!c.IsSuccess) return Failed(c, "Connect (admin queue)");
        Cntlid = (ushort)c.Dw0;
        if (await AuthenticateIfAskedAsync(_admin, c, "admin queue").ConfigureAwait(false) is { } refused) return refused;

        c = await PropertyGetAsync(ControllerProperties.Cap, wide: true).ConfigureAwait(false);
        if (!c.IsSuccess) return Failed(c, "Property Get CAP");
        Cap = c.Result;
        c = await PropertyGetAsync(ControllerProperties.Vs).ConfigureAwait(false);
        if (!c.IsSuccess) return Failed(c, "Property Get VS");
        Version = c.Dw0;

        c = await PropertySetAsync(ControllerProperties.Cc, ControllerProperties.CcEnableDefault).ConfigureAwait(false);
        if (!c.IsSuccess) return Failed(c, "Property Set CC.EN");
        // CAP.TO: worst-case time to become ready, in 500 ms units.
        var readyTimeout = TimeSpan.FromMilliseconds(Math.Max(500, (int)(Cap >> 24 & 0xFF) * 500));
        c = await WaitForStatusAsync(ControllerProperties.CstsReady, ControllerProperties.CstsReady, readyTimeout, "CSTS.RDY", ct).ConfigureAwait(false);
        if (!c.IsSuccess) return Failed(c, "Property Get CSTS");

        var identify = await IdentifyControllerAsync().ConfigureAwait(false);
        if (!identify.IsSuccess) return Failed(identify.Completion, "Identify Controller");
        Identify = identify.Value!;

        if (!IsDiscovery && ioQueues > 0)
        {
            uint n = (uint)(ioQueues - 1);
            c = await SetFeatureAsync(FeatureId.NumberOfQueues, n | n << 16).ConfigureAwait(false);
            if (!c.IsSuccess) return Failed(c, "Set Features Number of Queues");
            // NSQA/NCQA are 0's based; use what both directions got.
            int granted = (int)Math.Min(c.Dw0 & 0xFFFF, c.Dw0 >> 16) + 1;
            var failed = await ConnectIoQueuesAsync(Math.Min(ioQueues, granted), queueSize, adminOptions, options, ct).ConfigureAwait(false);
            if (failed != null) return failed;
        }
        StartKeepAlive(options);
        return null;
    }

    private async Task<NvmeConnectResult?> ConnectIoQueuesAsync(int count, int queueSize, NvmeTcpQueueOptions adminOptions, NvmeConnectOptions options, CancellationToken ct)
    {
        var ioOptions = adminOptions with
        {
            QueueDepth = queueSize,
            InCapsuleDataBytes = Math.Min(IdentifyControllerReader.InCapsuleDataBytes(Identify), NvmeTcpQueue.MaxInCapsuleDataBytes),
        };
        var queues = new List<NvmeTcpQueue>(count);
        try
        {
            for (int qid = 1; qid <= count; qid++)
            {
                var queue = await NvmeTcpQueue.ConnectAsync(Host, Port, ioOptions, ct).ConfigureAwait(false);
                queues.Add(queue);
                var c = await ConnectQueueAsync(queue, (ushort)qid, queueSize, Cntlid, 0, options.DisableSqFlowControl).ConfigureAwait(false);
                var failed = c.IsSuccess ? await AuthenticateIfAskedAsync(queue, c, $"I/O queue {qid}").ConfigureAwait(false) : Failed(c, $"Connect (I/O queue {qid})");
                if (failed != null)
                {
                    _io = [.. queues];
                    return failed;
                }
            }
            _io = [.. queues];
            return null;
        }
        catch
        {
            _io = [.. queues];
            throw;
        }
    }

    private async Task<NvmeCompletion> ConnectQueueAsync(NvmeTcpQueue queue, ushort qid, int entries, ushort cntlid, uint katoMs, bool disableSqFlowControl)
    {
        var data = new byte[Nvme.Connect.DataSize];
        Nvme.Connect.WriteData(data, HostId, cntlid, SubsystemNqn, HostNqn);
        var sqe = new byte[SubmissionQueueEntry.Size];
        NvmeCommands.Connect(sqe, qid, entries, katoMs, disableSqFlowControl);
        var c = await queue.SubmitAsync(sqe, data, TransferDirection.HostToController).ConfigureAwait(false);
        if (c.IsSuccess) queue.Qid = qid;
        return c;
    }

    private static NvmeConnectResult Failed(NvmeCompletion completion, string step) => new(completion, step, null);

    private NvmeConnectOptions _options = new();

    /// <summary>Runs DH-HMAC-CHAP on a queue whose Connect response set AUTHREQ.ATR (as the Linux host, each queue).</summary>
    private async Task<NvmeConnectResult?> AuthenticateIfAskedAsync(NvmeTcpQueue queue, NvmeCompletion connect, string which)
    {
        if ((connect.Dw0 & Nvme.Auth.AuthCommand.ConnectAuthenticationRequired) == 0) return null;
        if (_options.DhchapSecret is not { } secret)
            return new NvmeConnectResult(connect, $"Authentication ({which}): the controller requires DH-HMAC-CHAP and no secret is set", null)
            { AuthenticationFailure = Nvme.Auth.DhchapFailureReason.NotUsable };
        var outcome = await DhchapHost.AuthenticateAsync(queue, HostNqn, SubsystemNqn, secret, _options.DhchapControllerSecret,
            _options.DhchapHashes, _options.DhchapGroups).ConfigureAwait(false);
        return outcome.IsSuccess ? null
            : new NvmeConnectResult(outcome.Completion, $"Authentication ({which}): {outcome.Problem}", null) { AuthenticationFailure = outcome.Failure };
    }

    /// <summary>
    /// Re-authenticates on the admin queue (what writing dhchap_secret in sysfs makes the Linux host do),
    /// optionally with new secrets that later connects use too.
    /// </summary>
    public async Task<DhchapOutcome> ReauthenticateAsync(Nvme.Auth.DhchapKey? newSecret = null, Nvme.Auth.DhchapKey? newControllerSecret = null)
    {
        _options = _options with
        {
            DhchapSecret = newSecret ?? _options.DhchapSecret,
            DhchapControllerSecret = newControllerSecret ?? _options.DhchapControllerSecret,
        };
        var secret = _options.DhchapSecret ?? throw new InvalidOperationException("no DH-HMAC-CHAP secret to re-authenticate with");
        return await DhchapHost.AuthenticateAsync(_admin, HostNqn, SubsystemNqn, secret, _options.DhchapControllerSecret,
            _options.DhchapHashes, _options.DhchapGroups).ConfigureAwait(false);
    }

    /// <summary>Polls CSTS until (CSTS &amp; mask) == value; a CSTS.CFS (fatal) or the timeout throws IOException.</summary>
    private async Task<NvmeCompletion> WaitForStatusAsync(uint mask, uint value, TimeSpan timeout, string what, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var c = await PropertyGetAsync(ControllerProperties.Csts).ConfigureAwait(false);
            if (!c.IsSuccess) return c;
            uint csts = c.Dw0;
            if ((csts & ControllerProperties.CstsFatal) != 0) throw new IOException($"controller {Cntlid} of {SubsystemNqn} reports a fatal status (CSTS {csts:X}h) while waiting for {what}");
            if ((csts & mask) == value) return c;
            if (DateTime.UtcNow > deadline) throw new IOException($"controller {Cntlid} of {SubsystemNqn}: {what} not reached within {timeout.TotalMilliseconds} ms (CSTS {csts:X}h)");
            await Task.Delay(10, ct).ConfigureAwait(false);
        }
    }

    // ---- keep alive -----------------------------------------------------------------

    private void StartKeepAlive(NvmeConnectOptions options)
    {
        if (KatoMs == 0 || !options.SendKeepAlives) return;
        _keepAliveStop = new CancellationTokenSource();
        _keepAliveLoop = KeepAliveLoopAsync(TimeSpan.FromMilliseconds(Math.Max(100, KatoMs / 2)), _keepAliveStop.Token);
    }

    private async Task KeepAliveLoopAsync(TimeSpan period, CancellationToken ct)
    {
        using var timer = new PeriodicTimer(period);
        try
        {
            while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
                await KeepAliveAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or ObjectDisposedException)
        {
            // Stopped, or the admin queue is gone: the next command tells the caller.
        }
    }

    /// <summary>Closes every queue (I/O queues first). Does not shut the controller down; see <see cref="ShutdownAsync"/>.</summary>
    public async ValueTask DisposeAsync()
    {
        _keepAliveStop?.Cancel();
        await _keepAliveLoop.ConfigureAwait(false);
        foreach (var queue in _io) await queue.DisposeAsync().ConfigureAwait(false);
        await _admin.DisposeAsync().ConfigureAwait(false);
        _keepAliveStop?.Dispose();
    }

    public override string ToString() => $"controller {Cntlid} of {SubsystemNqn} at {Host}:{Port}";
}
