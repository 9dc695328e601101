using System.Runtime.InteropServices;

namespace EdgeBlock.Interop;

internal static partial class Native
{
    /// <summary>geteuid(2): the user whose rights the process uses (who must own the secrets it is given by path).</summary>
    [LibraryImport(Libc, EntryPoint = "geteuid")]
    public static partial uint EffectiveUserId();
}
