using System.Text;

namespace EdgeBlock.Daemon.Management;

/// <summary>
/// What the storage policy needs to know about a disk before it lets the daemon write to it: which file
/// system, partition table or volume manager its first bytes carry (blkid's usual magic numbers), and
/// whether the kernel uses the block device (mounted, a partition mounted, held by device mapper/RAID, swap).
/// </summary>
public static class DiskProbe
{
    /// <summary>Bytes read from a disk's start: btrfs's superblock (64 KiB + 64) is the furthest magic looked at.</summary>
    public const int HeadBytes = 1 << 20;

    // (offset, magic, what it is), in the order blkid would name them.
    private static readonly (int Offset, byte[] Magic, string What)[] Signatures =
    [
        (0, "XFSB"u8.ToArray(), "an XFS file system"),
        (0, "LUKS\xba\xbe"u8.ToArray(), "a LUKS encrypted volume"),
        (0, "hsqs"u8.ToArray(), "a squashfs file system"),
        (1080, [0x53, 0xEF], "an ext2/3/4 file system"),
        (65600, "_BHRfS_M"u8.ToArray(), "a btrfs file system"),
        (32769, "CD001"u8.ToArray(), "an ISO 9660 file system"),
        (512, "EFI PART"u8.ToArray(), "a GPT partition table"),
        (4096, "EFI PART"u8.ToArray(), "a GPT partition table (4K sectors)"),
        (512, "LABELONE"u8.ToArray(), "an LVM2 physical volume"),
        (4086, "SWAPSPACE2"u8.ToArray(), "a swap area"),
        (65526, "SWAPSPACE2"u8.ToArray(), "a swap area (64K pages)"),
        (4096, [0xFC, 0x4E, 0x2B, 0xA9], "a Linux RAID (md) member"),
        (510, [0x55, 0xAA], "an MBR partition table or boot sector"),
    ];

    /// <summary>What a disk's first bytes say it holds ("an ext2/3/4 file system (magic at byte 1080)"), or null.</summary>
    public static string? Signature(ReadOnlySpan<byte> head)
    {
        foreach (var (offset, magic, what) in Signatures)
            if (head.Length >= offset + magic.Length && head.Slice(offset, magic.Length).SequenceEqual(magic))
                return $"{what} (magic at byte {offset})";
        return null;
    }

    /// <summary>True when any byte of <paramref name="head"/> is not zero.</summary>
    public static bool HoldsData(ReadOnlySpan<byte> head) => head.IndexOfAnyExcept((byte)0) >= 0;

    /// <summary>Reads up to <see cref="HeadBytes"/> from the start of a file or device.</summary>
    public static byte[] ReadHead(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1);
        var head = new byte[HeadBytes];
        int total = 0;
        while (total < head.Length)
        {
            int n = stream.Read(head, total, head.Length - total);
            if (n == 0) break;
            total += n;
        }
        return head[..total];
    }

    /// <summary>
    /// Why the kernel is using block device MAJOR:MINOR (its real path <paramref name="realPath"/>), or null:
    /// it or one of its partitions is mounted, something holds it (device mapper, RAID, LVM), or it is swap.
    /// </summary>
    public static string? InUse(string realPath, uint major, uint minor)
    {
        var devices = new List<string> { $"{major}:{minor}" };
        string sys = $"/sys/dev/block/{major}:{minor}";
        if (Directory.Exists(sys))
        {
            foreach (string part in Directory.GetDirectories(sys))
                if (File.Exists(Path.Combine(part, "partition")) && File.Exists(Path.Combine(part, "dev")))
                    devices.Add(File.ReadAllText(Path.Combine(part, "dev")).Trim());
            foreach (string dev in devices)
            {
                string holders = dev == devices[0] ? Path.Combine(sys, "holders") : Path.Combine(DevDirectory(sys, dev) ?? "", "holders");
                if (Directory.Exists(holders) && Directory.GetFileSystemEntries(holders) is { Length: > 0 } held)
                    return $"it is held by {string.Join(", ", held.Select(Path.GetFileName))} (device mapper, RAID or LVM)";
            }
        }
        if (File.Exists("/proc/self/mountinfo") && MountedAt(File.ReadAllText("/proc/self/mountinfo"), devices, realPath) is { } mount)
            return $"it is mounted ({mount})";
        if (File.Exists("/proc/swaps") && File.ReadLines("/proc/swaps").Skip(1).Any(l => l.Split(' ', 2)[0] == realPath))
            return "it is in use as swap";
        return null;
    }

    private static string? DevDirectory(string sys, string dev) =>
        Directory.GetDirectories(sys).FirstOrDefault(p => File.Exists(Path.Combine(p, "dev")) && File.ReadAllText(Path.Combine(p, "dev")).Trim() == dev);

    /// <summary>
    /// The first mount (in /proc/self/mountinfo's format) of one of <paramref name="devices"/> ("MAJOR:MINOR") or
    /// whose source is <paramref name="source"/>, as "DEVICE on MOUNTPOINT"; null when none.
    /// </summary>
    public static string? MountedAt(string mountinfo, IReadOnlyCollection<string> devices, string source)
    {
        foreach (string line in mountinfo.Split('\n'))
        {
            // ID PARENT MAJOR:MINOR ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS
            string[] f = line.Split(' ');
            if (f.Length < 5) continue;
            int dash = Array.IndexOf(f, "-");
            string? mountSource = dash > 0 && dash + 2 < f.Length ? Unescape(f[dash + 2]) : null;
            if (devices.Contains(f[2]) || mountSource == source) return $"{mountSource ?? f[2]} on {Unescape(f[4])}";
        }
        return null;
    }

    /// <summary>mountinfo writes space, tab, newline and backslash as \ooo octal escapes.</summary>
    private static string Unescape(string field)
    {
        if (!field.Contains('\\')) return field;
        var bytes = new List<byte>();
        for (int i = 0; i < field.Length; i++)
        {
            if (field[i] == '\\' && i + 3 < field.Length && IsOctal(field.AsSpan(i + 1, 3)))
            {
                bytes.Add((byte)Convert.ToInt32(field.Substring(i + 1, 3), 8));
                i += 3;
            }
            else bytes.AddRange(Encoding.UTF8.GetBytes(field[i].ToString()));
        }
        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    private static bool IsOctal(ReadOnlySpan<char> s) => s.Length == 3 && s.IndexOfAnyExceptInRange('0', '7') < 0;
}
