using System.Runtime.InteropServices;

namespace EdgeBlock.Rbd.Interop;

/// <summary>
/// The part of librbd's C API (librbd.so.1, Ceph 16.2; the C ABI is stable) that EdgeBlock uses: image
/// management, the exclusive lock, and asynchronous I/O whose completions call back
/// <c>void (*)(rbd_completion_t, void *arg)</c> on librbd's finisher thread. int results are 0 or -errno.
/// </summary>
internal static unsafe partial class Librbd
{
    private const string Lib = "librbd.so.1";

    public const int LockModeExclusive = 0;

    /// <summary>rbd_image_spec_t: one entry of rbd_list2.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct ImageSpec
    {
        public byte* Id;
        public byte* Name;
    }

    /// <summary>rbd_snap_info_t: one entry of rbd_snap_list.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct SnapInfo
    {
        public ulong Id;
        public ulong Size;
        public byte* Name;
    }

    [LibraryImport(Lib, EntryPoint = "rbd_create", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Create(nint ioctx, string name, ulong size, ref int order);

    [LibraryImport(Lib, EntryPoint = "rbd_remove", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Remove(nint ioctx, string name);

    [LibraryImport(Lib, EntryPoint = "rbd_list2")]
    public static partial int List2(nint ioctx, ImageSpec* images, ref nuint maxImages);

    [LibraryImport(Lib, EntryPoint = "rbd_image_spec_list_cleanup")]
    public static partial void ImageSpecListCleanup(ImageSpec* images, nuint count);

    [LibraryImport(Lib, EntryPoint = "rbd_open", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(nint ioctx, string name, out nint image, string? snapName);

    [LibraryImport(Lib, EntryPoint = "rbd_close")]
    public static partial int Close(nint image);

    [LibraryImport(Lib, EntryPoint = "rbd_get_size")]
    public static partial int GetSize(nint image, out ulong size);

    [LibraryImport(Lib, EntryPoint = "rbd_resize")]
    public static partial int Resize(nint image, ulong size);

    [LibraryImport(Lib, EntryPoint = "rbd_lock_acquire")]
    public static partial int LockAcquire(nint image, int lockMode);

    [LibraryImport(Lib, EntryPoint = "rbd_lock_release")]
    public static partial int LockRelease(nint image);

    [LibraryImport(Lib, EntryPoint = "rbd_lock_get_owners")]
    public static partial int LockGetOwners(nint image, out int lockMode, byte** owners, ref nuint maxOwners);

    [LibraryImport(Lib, EntryPoint = "rbd_lock_get_owners_cleanup")]
    public static partial void LockGetOwnersCleanup(byte** owners, nuint count);

    [LibraryImport(Lib, EntryPoint = "rbd_snap_create", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int SnapCreate(nint image, string snapName);

    [LibraryImport(Lib, EntryPoint = "rbd_snap_remove", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int SnapRemove(nint image, string snapName);

    [LibraryImport(Lib, EntryPoint = "rbd_snap_list")]
    public static partial int SnapList(nint image, SnapInfo* snaps, ref int maxSnaps);

    [LibraryImport(Lib, EntryPoint = "rbd_snap_list_end")]
    public static partial void SnapListEnd(SnapInfo* snaps);

    [LibraryImport(Lib, EntryPoint = "rbd_snap_protect", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int SnapProtect(nint image, string snapName);

    [LibraryImport(Lib, EntryPoint = "rbd_snap_unprotect", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int SnapUnprotect(nint image, string snapName);

    [LibraryImport(Lib, EntryPoint = "rbd_get_features")]
    public static partial int GetFeatures(nint image, out ulong features);

    [LibraryImport(Lib, EntryPoint = "rbd_clone", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Clone(nint parentIoctx, string parentName, string parentSnapName, nint childIoctx, string childName, ulong features, ref int order);

    [LibraryImport(Lib, EntryPoint = "rbd_rename", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Rename(nint ioctx, string sourceName, string destinationName);

    [LibraryImport(Lib, EntryPoint = "rbd_metadata_get", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int MetadataGet(nint image, string key, byte* value, ref nuint valueLength);

    [LibraryImport(Lib, EntryPoint = "rbd_metadata_set", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int MetadataSet(nint image, string key, string value);

    /// <summary>struct timespec on 64-bit Linux.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport(Lib, EntryPoint = "rbd_get_create_timestamp")]
    public static partial int GetCreateTimestamp(nint image, out Timespec timestamp);

    [LibraryImport(Lib, EntryPoint = "rbd_aio_create_completion")]
    public static partial int AioCreateCompletion(nint callbackArg, delegate* unmanaged<nint, nint, void> callback, out nint completion);

    [LibraryImport(Lib, EntryPoint = "rbd_aio_get_return_value")]
    public static partial nint AioGetReturnValue(nint completion);

    [LibraryImport(Lib, EntryPoint = "rbd_aio_release")]
    public static partial void AioRelease(nint completion);

    [LibraryImport(Lib, EntryPoint = "rbd_aio_read")]
    public static partial int AioRead(nint image, ulong offset, nuint length, byte* buffer, nint completion);

    [LibraryImport(Lib, EntryPoint = "rbd_aio_write")]
    public static partial int AioWrite(nint image, ulong offset, nuint length, byte* buffer, nint completion);

    [LibraryImport(Lib, EntryPoint = "rbd_aio_flush")]
    public static partial int AioFlush(nint image, nint completion);

    [LibraryImport(Lib, EntryPoint = "rbd_aio_discard")]
    public static partial int AioDiscard(nint image, ulong offset, ulong length, nint completion);

    [LibraryImport(Lib, EntryPoint = "rbd_aio_write_zeroes")]
    public static partial int AioWriteZeroes(nint image, ulong offset, nuint length, nint completion, int zeroFlags, int opFlags);
}
