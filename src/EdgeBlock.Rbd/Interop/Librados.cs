using System.Runtime.InteropServices;

namespace EdgeBlock.Rbd.Interop;

/// <summary>
/// The part of librados' C API (librados.so.2, Ceph 16.2) that opening a cluster and a pool needs.
/// Handles are opaque pointers; every int result is 0 or a negative errno.
/// </summary>
internal static unsafe partial class Librados
{
    private const string Lib = "librados.so.2";

    [LibraryImport(Lib, EntryPoint = "rados_create2", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Create2(out nint cluster, string clusterName, string name, ulong flags);

    [LibraryImport(Lib, EntryPoint = "rados_conf_read_file", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int ConfReadFile(nint cluster, string path);

    [LibraryImport(Lib, EntryPoint = "rados_conf_set", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int ConfSet(nint cluster, string option, string value);

    [LibraryImport(Lib, EntryPoint = "rados_connect")]
    public static partial int Connect(nint cluster);

    [LibraryImport(Lib, EntryPoint = "rados_shutdown")]
    public static partial void Shutdown(nint cluster);

    [LibraryImport(Lib, EntryPoint = "rados_ioctx_create", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int IoctxCreate(nint cluster, string poolName, out nint ioctx);

    [LibraryImport(Lib, EntryPoint = "rados_ioctx_destroy")]
    public static partial void IoctxDestroy(nint ioctx);
}
