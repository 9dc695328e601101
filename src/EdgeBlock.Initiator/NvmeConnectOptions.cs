using EdgeBlock.Nvme;

namespace EdgeBlock.Initiator;

/// <summary>Connection settings beyond the usual ones (nvme-cli's connect options, with its defaults).</summary>
public sealed record NvmeConnectOptions
{
    /// <summary>The 128-bit host identifier sent in Connect (nvme-cli reads /etc/nvme/hostid). Null: a new one per connect.</summary>
    public Guid? HostId { get; init; }

    /// <summary>Keep alive timeout sent in the admin Connect (Linux default 5 s; 0 turns keep alive off).</summary>
    public uint KatoMs { get; init; } = 5000;

    /// <summary>Send Keep Alive commands every KATO/2 on the admin queue, as the Linux host does.</summary>
    public bool SendKeepAlives { get; init; } = true;

    /// <summary>Connect CATTR: no SQ flow control, so the controller may complete reads with C2HData SUCCESS alone.</summary>
    public bool DisableSqFlowControl { get; init; }

    /// <summary>Admin queue entries (Linux NVME_AQ_DEPTH).</summary>
    public int AdminQueueDepth { get; init; } = 32;

    /// <summary>See <see cref="NvmeTcpQueueOptions.InlineCompletions"/>.</summary>
    public bool InlineCompletions { get; init; }

    /// <summary>The host's DH-HMAC-CHAP secret (nvme connect --dhchap-secret): used when the controller asks (AUTHREQ.ATR).</summary>
    public Nvme.Auth.DhchapKey? DhchapSecret { get; init; }

    /// <summary>The controller's secret (--dhchap-ctrl-secret): the host authenticates the controller too.</summary>
    public Nvme.Auth.DhchapKey? DhchapControllerSecret { get; init; }

    /// <summary>Hashes and DH groups offered in AUTH_Negotiate (null: all, as the Linux host does).</summary>
    public IReadOnlyList<Nvme.Auth.DhchapHash>? DhchapHashes { get; init; }
    public IReadOnlyList<Nvme.Auth.DhchapDhGroup>? DhchapGroups { get; init; }

    /// <summary>Bound on each TCP connect + ICReq/ICResp.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);
}

/// <summary>
/// How a connect ended: the controller, or the NVMe status of the step that failed (for Connect,
/// DW0 carries IATTR/IPO when the status is Connect Invalid Parameters).
/// </summary>
public sealed record NvmeConnectResult(NvmeCompletion Completion, string? FailedStep, NvmeController? Controller)
{
    /// <summary>Set when DH-HMAC-CHAP failed: the AUTH_Failure reason (the controller's, or ours for the controller).</summary>
    public Nvme.Auth.DhchapFailureReason AuthenticationFailure { get; init; }

    public bool IsSuccess => Controller != null;
    public NvmeStatus Status => Completion.Status;

    /// <summary>The controller, or an exception naming the step and status.</summary>
    public NvmeController EnsureSuccess() =>
        Controller ?? throw new InvalidOperationException($"NVMe connect failed at {FailedStep}: {Completion.Status} (DW0 {Completion.Dw0:X8}h)");
}
