using EdgeBlock.Nvme;

namespace EdgeBlock.Target;

/// <summary>The discovery log page: one entry per subsystem the host may access, plus the discovery subsystem itself.</summary>
internal static class Discovery
{
    public static byte[] BuildLogPage(NvmeTarget target, Controller controller, (string Address, string ServiceId, bool IsIpv6) port)
    {
        // Filter by the host access list, as nvmet does: a host only learns of subsystems it may connect to.
        var visible = target.Subsystems.Where(s => s.IsHostAllowed(controller.HostNqn)).OrderBy(s => s.NqnName, StringComparer.Ordinal).ToList();
        int records = visible.Count + 1;
        var page = new byte[DiscoveryLog.HeaderSize + records * DiscoveryLog.EntrySize];
        DiscoveryLog.WriteHeader(page, target.DiscoveryGenctr, (ulong)records);
        byte adrfam = port.IsIpv6 ? DiscoveryLog.AdrfamIpv6 : DiscoveryLog.AdrfamIpv4;
        ushort asqsz = (ushort)target.Limits.MaxQueueEntries;
        int offset = DiscoveryLog.HeaderSize;
        foreach (var s in visible)
        {
            DiscoveryLog.WriteEntry(page.AsSpan(offset), DiscoveryLog.SubtypeNvm, 1, port.ServiceId, port.Address, adrfam, s.NqnName, asqsz);
            offset += DiscoveryLog.EntrySize;
        }
        DiscoveryLog.WriteEntry(page.AsSpan(offset), DiscoveryLog.SubtypeCurrentDiscovery, 1, port.ServiceId, port.Address, adrfam, Nqn.Discovery, asqsz);
        return page;
    }
}
