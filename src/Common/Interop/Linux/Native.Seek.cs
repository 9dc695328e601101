using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace EdgeBlock.Interop;

/// <summary>lseek's SEEK_DATA and SEEK_HOLE (linux/fs.h): where a sparse file's data and holes are, without reading it.</summary>
internal static partial class Native
{
    public const int SEEK_DATA = 3;
    public const int SEEK_HOLE = 4;

    /// <summary>SEEK_DATA past the last data: no more data.</summary>
    public const int ENXIO = 6;

    [LibraryImport(Libc, EntryPoint = "lseek", SetLastError = true)]
    public static partial long Lseek(SafeFileHandle fd, long offset, int whence);
}
