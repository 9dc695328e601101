using EdgeBlock.Nvme.Auth;

namespace EdgeBlock.Target;

/// <summary>
/// What a host must prove before its queues run commands (nvmet's per-host dhchap_key, dhchap_ctrl_key,
/// dhchap_hash, dhchap_dhgroup): its DH-HMAC-CHAP secret, optionally the controller's secret for
/// bidirectional authentication, and the hash and DH group the controller picks when the host offers them.
/// </summary>
public sealed record HostAuthentication(DhchapKey HostKey, DhchapKey? ControllerKey = null,
    DhchapHash Hash = DhchapHash.Sha256, DhchapDhGroup DhGroup = DhchapDhGroup.Null)
{
    /// <summary>Never prints the secrets.</summary>
    public override string ToString() =>
        $"DH-HMAC-CHAP {DhchapNames.Name(Hash)}/{DhchapNames.Name(DhGroup)}{(ControllerKey != null ? ", bidirectional" : "")}";
}
