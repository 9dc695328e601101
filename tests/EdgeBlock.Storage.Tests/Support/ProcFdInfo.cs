using System.Globalization;
using Microsoft.Win32.SafeHandles;

namespace EdgeBlock.Storage.Tests.Support;

/// <summary>The kernel's own account of this process's open descriptors, from /proc/self.</summary>
public static class ProcFdInfo
{
    /// <summary>The open flags of a descriptor as the kernel reports them.</summary>
    public static int Flags(SafeFileHandle handle) => FlagsOf(handle.DangerousGetHandle().ToString(CultureInfo.InvariantCulture));

    /// <summary>The open flags of every descriptor this process holds on a path.</summary>
    public static IReadOnlyList<int> FlagsOfDescriptorsOn(string path)
    {
        string target = Path.GetFullPath(path);
        var flags = new List<int>();
        foreach (string link in Directory.GetFiles("/proc/self/fd"))
        {
            string? linkTarget;
            try
            {
                linkTarget = new FileInfo(link).LinkTarget;
            }
            catch (IOException)
            {
                continue; // closed while we looked
            }
            if (linkTarget == target)
            {
                flags.Add(FlagsOf(Path.GetFileName(link)));
            }
        }
        return flags;
    }

    private static int FlagsOf(string descriptor)
    {
        string line = File.ReadLines($"/proc/self/fdinfo/{descriptor}").First(l => l.StartsWith("flags:", StringComparison.Ordinal));
        return Convert.ToInt32(line["flags:".Length..].Trim(), 8);
    }
}
