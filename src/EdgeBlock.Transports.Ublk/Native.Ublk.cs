using System.Runtime.InteropServices;

namespace EdgeBlock.Interop;

/// <summary>What the ublk transport adds to the shared Native class: open(2) of its device nodes and the errnos it names.</summary>
internal static unsafe partial class Native
{
    public const int O_RDWR = 0x2;
    public const int ENODEV = 19;
    public const int EROFS = 30;
    public const int EPERM = 1;
    public const int EACCES = 13;

    [LibraryImport(Libc, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags);
}
