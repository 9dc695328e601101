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

/// <summary>A group (tenant) and the space its writable volumes use: whole extents, and sectors of stored chunks.</summary>
internal sealed class GroupState(GroupRecord record)
{
    public GroupRecord Record { get; set; } = record;
    public long UsedExtents;

    /// <summary>Bytes of stored chunks of the group's chunk volumes (changed with Interlocked by their writers).</summary>
    public long UsedChunkBytes;

    public long UsedBytes(int extentSize) => UsedExtents * extentSize + Volatile.Read(ref UsedChunkBytes);

    /// <summary>Charges bytes against the quota; false (nothing charged) when that would pass it.</summary>
    public bool TryCharge(long bytes, int extentSize)
    {
        while (true)
        {
            long used = Volatile.Read(ref UsedChunkBytes);
            if (bytes > 0 && Record.QuotaBytes is long quota && UsedExtents * extentSize + used + bytes > quota) return false;
            if (Interlocked.CompareExchange(ref UsedChunkBytes, used + bytes, used) == used) return true;
        }
    }
}
