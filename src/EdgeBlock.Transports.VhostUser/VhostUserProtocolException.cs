namespace EdgeBlock.Transports.VhostUser;

/// <summary>The front-end broke the protocol; the connection is closed (the daemon keeps serving).</summary>
public sealed class VhostUserProtocolException(string message) : Exception(message);
