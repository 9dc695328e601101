namespace EdgeBlock.Transports.Ublk;

/// <summary>A ublk device could not be created, started or stopped; the message names the step and the kernel's answer.</summary>
public sealed class UblkException(string message) : Exception(message);
