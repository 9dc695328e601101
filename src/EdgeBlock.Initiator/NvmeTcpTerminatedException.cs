using EdgeBlock.Nvme.Tcp;

namespace EdgeBlock.Initiator;

/// <summary>The controller ended the connection with a C2HTermReq: a fatal transport error, reported with FES and FEI.</summary>
public sealed class NvmeTcpTerminatedException(TermReqFes fes, uint fei, string message) : IOException(message)
{
    public TermReqFes Fes { get; } = fes;
    public uint Fei { get; } = fei;
}
