using EdgeBlock.Naming;

namespace EdgeBlock.Volumes;

/// <summary>Rules for pool, volume, snapshot and group names (src/Common/Naming/VolumeNames.cs, shared with the CLI).</summary>
public static class PoolNames
{
    public const int MaxLength = VolumeNames.MaxLength;

    public static bool IsValid(string? name) => VolumeNames.IsValid(name);

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
    public static bool TrySplit(string text, out string pool, out string name) => VolumeNames.TrySplit(text, out pool, out name);
}

/// <summary>A group (tenant) and the allocated extents of its writable volumes.</summary>
internal sealed class GroupState(GroupRecord record)
{
    public GroupRecord Record { get; set; } = record;
    public long UsedExtents;
}
