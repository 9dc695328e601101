using System.Security.Cryptography;
using System.Text;

namespace EdgeBlock.Daemon;

/// <summary>
/// Namespace UUIDs that stay the same across restarts without stored state: a name-based UUID
/// (RFC 9562 version 8 layout over SHA-256) of the subsystem NQN, NSID and backend identity.
/// </summary>
public static class NamespaceIdentity
{
    public static Guid For(string subsystemNqn, uint nsid, string backendIdentity)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes($"{subsystemNqn}\n{nsid}\n{backendIdentity}"), hash);
        Span<byte> uuid = hash[..16];
        uuid[6] = (byte)((uuid[6] & 0x0F) | 0x80); // version 8 (custom, name-based)
        uuid[8] = (byte)((uuid[8] & 0x3F) | 0x80); // RFC 9562 variant
        return new Guid(uuid, bigEndian: true);
    }
}
