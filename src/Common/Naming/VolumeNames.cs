using System.Text.RegularExpressions;

namespace EdgeBlock.Naming;

/// <summary>
/// The rule for pool, volume, snapshot and group names (they appear in paths, URLs and NQN-like specs), compiled
/// into the storage layer (which enforces it) and the CLI (which checks arguments before asking the daemon).
/// </summary>
internal static partial class VolumeNames
{
    public const int MaxLength = 64;

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    private static partial Regex NamePattern();

    public static bool IsValid(string? name) => name is { Length: > 0 and <= MaxLength } && NamePattern().IsMatch(name);

    /// <summary>Splits POOL/NAME (NAME may be VOLUME@SNAPSHOT).</summary>
    public static bool TrySplit(string text, out string pool, out string name)
    {
        int slash = text.IndexOf('/');
        pool = slash > 0 ? text[..slash] : "";
        name = slash > 0 ? text[(slash + 1)..] : "";
        return slash > 0 && IsValid(pool) && name.Length > 0;
    }
}
