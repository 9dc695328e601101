using System.Text.RegularExpressions;

namespace EdgeBlock.Volumes;

/// <summary>Rules for pool, volume, snapshot and group names (they appear in paths, URLs and NQN-like specs).</summary>
public static partial class PoolNames
{
    public const int MaxLength = 64;

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    private static partial Regex NamePattern();

    public static bool IsValid(string? name) => name is { Length: > 0 and <= MaxLength } && NamePattern().IsMatch(name);

    public static void CheckPool(string name) => Check("pool", name);

    public static void Check(string what, string name)
    {
        if (!IsValid(name))
        {
            throw new VolumeException(VolumeError.Invalid,
                $"{what} name '{name}': use 1-{MaxLength} letters, digits, '.', '_' or '-', starting with a letter or digit");
        }
    }

    /// <summary>Splits POOL/NAME (NAME may be VOLUME@SNAPSHOT).</summary>
    public static bool TrySplit(string text, out string pool, out string name)
    {
        int slash = text.IndexOf('/');
        pool = slash > 0 ? text[..slash] : "";
        name = slash > 0 ? text[(slash + 1)..] : "";
        return slash > 0 && IsValid(pool) && name.Length > 0;
    }
}

/// <summary>A group (tenant) and the allocated extents of its writable volumes.</summary>
internal sealed class GroupState(GroupRecord record)
{
    public GroupRecord Record { get; set; } = record;
    public long UsedExtents;
}
