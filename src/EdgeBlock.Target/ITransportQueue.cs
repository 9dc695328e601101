namespace EdgeBlock.Target;

/// <summary>
/// What the target needs from a transport queue (our nvmet_fabrics_ops): the target never sees sockets.
/// </summary>
public interface ITransportQueue
{
    /// <summary>Sends the completion of a request that finished outside the normal flow (an Asynchronous Event Request).</summary>
    void CompleteDeferred(NvmeRequest request);

    /// <summary>Tears the queue down (controller fatal error, keep-alive expiry, controller deleted); reason goes to the log.</summary>
    void Abort(string reason);

    /// <summary>The address the host reached us on, for the discovery log ("127.0.0.1", "4420", IPv4?).</summary>
    (string Address, string ServiceId, bool IsIpv6) LocalEndpoint { get; }

    /// <summary>The host's address, for logs and `host list`.</summary>
    string RemoteEndpoint { get; }
}
