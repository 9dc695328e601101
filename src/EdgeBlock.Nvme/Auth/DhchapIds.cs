namespace EdgeBlock.Nvme.Auth;

/// <summary>DH-HMAC-CHAP hash function identifiers (HMAC with SHA-2).</summary>
public enum DhchapHash : byte
{
    Sha256 = 0x01,
    Sha384 = 0x02,
    Sha512 = 0x03,
}

/// <summary>DH-HMAC-CHAP Diffie-Hellman group identifiers: none, or an RFC 7919 group.</summary>
public enum DhchapDhGroup : byte
{
    Null = 0x00,
    Ffdhe2048 = 0x01,
    Ffdhe3072 = 0x02,
    Ffdhe4096 = 0x03,
    Ffdhe6144 = 0x04,
    Ffdhe8192 = 0x05,
}

/// <summary>Reason code explanations of AUTH_Failure1/2 (reason code 01h, "authentication failure").</summary>
public enum DhchapFailureReason : byte
{
    None = 0x00,
    Failed = 0x01,
    NotUsable = 0x02,
    ConcatMismatch = 0x03,
    HashUnusable = 0x04,
    DhGroupUnusable = 0x05,
    IncorrectPayload = 0x06,
    IncorrectMessage = 0x07,
}

/// <summary>Names as nvme-cli and nvmet's configfs write them (hmac(sha256), ffdhe2048, null).</summary>
public static class DhchapNames
{
    public static readonly DhchapHash[] AllHashes = [DhchapHash.Sha256, DhchapHash.Sha384, DhchapHash.Sha512];
    public static readonly DhchapDhGroup[] AllGroups =
        [DhchapDhGroup.Null, DhchapDhGroup.Ffdhe2048, DhchapDhGroup.Ffdhe3072, DhchapDhGroup.Ffdhe4096, DhchapDhGroup.Ffdhe6144, DhchapDhGroup.Ffdhe8192];

    public static bool IsDefined(DhchapHash hash) => hash is DhchapHash.Sha256 or DhchapHash.Sha384 or DhchapHash.Sha512;
    public static bool IsDefined(DhchapDhGroup group) => group <= DhchapDhGroup.Ffdhe8192;

    /// <summary>Digest length in bytes (the challenge and response length HL).</summary>
    public static int HashLength(DhchapHash hash) => hash switch
    {
        DhchapHash.Sha256 => 32,
        DhchapHash.Sha384 => 48,
        DhchapHash.Sha512 => 64,
        _ => 0,
    };

    public static string Name(DhchapHash hash) => hash switch
    {
        DhchapHash.Sha256 => "sha256",
        DhchapHash.Sha384 => "sha384",
        DhchapHash.Sha512 => "sha512",
        _ => $"hash {(byte)hash:X2}h",
    };

    public static string Name(DhchapDhGroup group) => group == DhchapDhGroup.Null ? "null"
        : IsDefined(group) ? "ffdhe" + FfdheGroup.Bits(group) : $"DH group {(byte)group:X2}h";

    /// <summary>Accepts sha256 or hmac(sha256) (nvmet's configfs spelling).</summary>
    public static bool TryParseHash(string? text, out DhchapHash hash)
    {
        string t = (text ?? "").Trim().ToLowerInvariant();
        if (t.StartsWith("hmac(", StringComparison.Ordinal) && t.EndsWith(')')) t = t[5..^1];
        foreach (var h in AllHashes)
            if (Name(h) == t) { hash = h; return true; }
        hash = default;
        return false;
    }

    public static bool TryParseGroup(string? text, out DhchapDhGroup group)
    {
        string t = (text ?? "").Trim().ToLowerInvariant();
        foreach (var g in AllGroups)
            if (Name(g) == t) { group = g; return true; }
        group = default;
        return false;
    }
}
