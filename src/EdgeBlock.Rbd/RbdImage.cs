using System.Runtime.InteropServices;
using EdgeBlock.Rbd.Interop;

namespace EdgeBlock.Rbd;

/// <summary>
/// An open RBD image: size, resize, the exclusive lock and snapshots. Management calls block (librbd);
/// I/O goes through <see cref="RbdBlockDevice"/>. Dispose closes the image, which releases the lock.
/// </summary>
public sealed class RbdImage : IDisposable
{
    private nint _image;

    private RbdImage(CephCluster cluster, string name, nint image)
    {
        Cluster = cluster;
        Name = name;
        _image = image;
    }

    public CephCluster Cluster { get; }

    public string Name { get; }

    /// <summary>pool/image, as rbd(8) names it.</summary>
    public string Spec => $"{Cluster.PoolName}/{Name}";

    internal nint Handle => _image != 0 ? _image : throw new ObjectDisposedException(Spec);

    internal static RbdImage Open(CephCluster cluster, string name, bool exclusive)
    {
        int result = Librbd.Open(cluster.IoContext, name, out nint handle, null);
        if (result == -CephErrno.ENOENT)
        {
            throw new CephException($"RBD image {cluster.PoolName}/{name} does not exist", result, verbatim: true);
        }
        CephException.ThrowIfFailed(result, $"opening RBD image {cluster.PoolName}/{name}");
        var image = new RbdImage(cluster, name, handle);
        if (exclusive)
        {
            try
            {
                image.AcquireExclusiveLock();
            }
            catch
            {
                image.Dispose();
                throw;
            }
        }
        return image;
    }

    /// <summary>
    /// Takes the exclusive lock and keeps it (librbd will not hand it to another client that asks), so two
    /// daemons never serve the same image read-write. Refused while another client holds it, naming that client.
    /// </summary>
    public void AcquireExclusiveLock()
    {
        int result = Librbd.LockAcquire(Handle, Librbd.LockModeExclusive);
        if (result >= 0)
        {
            return;
        }
        IReadOnlyList<string> owners = LockOwners();
        if (owners.Count > 0)
        {
            throw new CephException(
                $"RBD image {Spec} is locked by the client at {string.Join(", ", owners)} (another EdgeBlock daemon or rbd client "
                + $"serves it; 'rbd lock ls {Spec}' shows it): stop that client, or remove its lock with 'rbd lock rm' once it is dead "
                + $"({CephException.Describe(result)})",
                result, verbatim: true);
        }
        throw new CephException($"taking the exclusive lock of RBD image {Spec}", result);
    }

    /// <summary>The addresses of the clients holding the image's lock ("127.0.0.1:0/2826696838"); empty when nobody does.</summary>
    public unsafe IReadOnlyList<string> LockOwners()
    {
        const int maxOwners = 8;
        byte** owners = stackalloc byte*[maxOwners];
        nuint count = maxOwners;
        int result = Librbd.LockGetOwners(Handle, out _, owners, ref count);
        if (result == -CephErrno.ENOENT)
        {
            return [];
        }
        CephException.ThrowIfFailed(result, $"reading the lock owners of RBD image {Spec}");
        var names = new string[(int)count];
        for (int i = 0; i < names.Length; i++)
        {
            names[i] = Marshal.PtrToStringUTF8((nint)owners[i])!;
        }
        Librbd.LockGetOwnersCleanup(owners, count);
        return names;
    }

    /// <summary>The image's size in bytes.</summary>
    public long Size
    {
        get
        {
            CephException.ThrowIfFailed(Librbd.GetSize(Handle, out ulong size), $"reading the size of RBD image {Spec}");
            return (long)size;
        }
    }

    /// <summary>Grows or shrinks the image (shrinking discards the data past the new end).</summary>
    public void Resize(long sizeBytes) =>
        CephException.ThrowIfFailed(Librbd.Resize(Handle, (ulong)sizeBytes), $"resizing RBD image {Spec} to {sizeBytes} bytes");

    /// <summary>A value of the image's metadata (kept with the image in the cluster), or null when the key is not set.</summary>
    public unsafe string? GetMetadata(string key)
    {
        nuint length = 256;
        while (true)
        {
            byte[] value = new byte[(int)length];
            fixed (byte* p = value)
            {
                int result = Librbd.MetadataGet(Handle, key, p, ref length);
                if (result == -CephErrno.ERANGE)
                {
                    continue;
                }
                if (result == -CephErrno.ENOENT)
                {
                    return null;
                }
                CephException.ThrowIfFailed(result, $"reading metadata {key} of RBD image {Spec}");
                return Marshal.PtrToStringUTF8((nint)p);
            }
        }
    }

    public void SetMetadata(string key, string value) =>
        CephException.ThrowIfFailed(Librbd.MetadataSet(Handle, key, value), $"setting metadata {key} of RBD image {Spec}");

    /// <summary>When the image was created (cluster time).</summary>
    public DateTimeOffset Created
    {
        get
        {
            CephException.ThrowIfFailed(Librbd.GetCreateTimestamp(Handle, out Librbd.Timespec t), $"reading the creation time of RBD image {Spec}");
            return DateTimeOffset.FromUnixTimeSeconds(t.Seconds).AddTicks(t.Nanoseconds / 100);
        }
    }

    public void CreateSnapshot(string snapName) =>
        CephException.ThrowIfFailed(Librbd.SnapCreate(Handle, snapName), $"creating snapshot {Spec}@{snapName}");

    public void RemoveSnapshot(string snapName) =>
        CephException.ThrowIfFailed(Librbd.SnapRemove(Handle, snapName), $"removing snapshot {Spec}@{snapName}");

    /// <summary>Protects a snapshot so that it can be cloned (clone format 1) and cannot be removed while it has clones.</summary>
    public void ProtectSnapshot(string snapName) =>
        CephException.ThrowIfFailed(Librbd.SnapProtect(Handle, snapName), $"protecting snapshot {Spec}@{snapName}");

    /// <summary>Unprotects a snapshot before its removal; refused (EBUSY) while clones of it exist.</summary>
    public void UnprotectSnapshot(string snapName)
    {
        int result = Librbd.SnapUnprotect(Handle, snapName);
        if (result == -CephErrno.EBUSY)
        {
            throw new CephException($"snapshot {Spec}@{snapName} has clones; delete them (or flatten them with rbd flatten) first", result, verbatim: true);
        }
        if (result != -CephErrno.EINVAL) // EINVAL: it was not protected
        {
            CephException.ThrowIfFailed(result, $"unprotecting snapshot {Spec}@{snapName}");
        }
    }

    /// <summary>The image's feature bits (RBD_FEATURE_*), which its clones inherit.</summary>
    public ulong Features
    {
        get
        {
            CephException.ThrowIfFailed(Librbd.GetFeatures(Handle, out ulong features), $"reading the features of RBD image {Spec}");
            return features;
        }
    }

    /// <summary>The names of the image's snapshots, oldest first.</summary>
    public IReadOnlyList<string> ListSnapshots() => Snapshots().Select(s => s.Name).ToList();

    /// <summary>The image's snapshots with the image's size when each was taken, oldest first.</summary>
    public unsafe IReadOnlyList<(string Name, long Size)> Snapshots()
    {
        int max = 16;
        while (true)
        {
            Librbd.SnapInfo[] snaps = new Librbd.SnapInfo[max + 1]; // librbd writes a terminating entry
            fixed (Librbd.SnapInfo* p = snaps)
            {
                int result = Librbd.SnapList(Handle, p, ref max);
                if (result == -CephErrno.ERANGE)
                {
                    continue;
                }
                CephException.ThrowIfFailed(result, $"listing the snapshots of RBD image {Spec}");
                var list = new (string, long)[result];
                for (int i = 0; i < result; i++)
                {
                    list[i] = (Marshal.PtrToStringUTF8((nint)p[i].Name)!, (long)p[i].Size);
                }
                Librbd.SnapListEnd(p);
                return list;
            }
        }
    }

    /// <summary>Closes the image (flushing librbd's cache and releasing the lock). Close its block devices' I/O first.</summary>
    public void Dispose()
    {
        nint image = Interlocked.Exchange(ref _image, 0);
        if (image != 0)
        {
            Librbd.Close(image);
        }
    }
}
