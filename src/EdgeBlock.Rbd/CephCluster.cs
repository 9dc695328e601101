using System.Runtime.InteropServices;
using EdgeBlock.Interop;
using EdgeBlock.Rbd.Interop;

namespace EdgeBlock.Rbd;

/// <summary>
/// One connection to a Ceph cluster (a librados handle) and the RADOS pool whose RBD images it manages.
/// Calls block (librados is synchronous here) for at most <see cref="CephConnectOptions.OpTimeout"/>: run
/// them off the I/O path. Thread-safe, as librados' handles are. Close the images before disposing it.
/// </summary>
public sealed class CephCluster : IDisposable
{
    private nint _cluster;
    private nint _ioctx;

    private CephCluster(CephConnectOptions options, nint cluster, nint ioctx)
    {
        Options = options;
        _cluster = cluster;
        _ioctx = ioctx;
    }

    public CephConnectOptions Options { get; }

    public string PoolName => Options.Pool;

    internal nint IoContext => _ioctx != 0 ? _ioctx : throw new ObjectDisposedException(nameof(CephCluster));

    /// <summary>Connects (reads the conf file, authenticates with the keyring, opens the pool) or throws naming what failed.</summary>
    public static CephCluster Connect(CephConnectOptions options)
    {
        CheckKeyringMode(options.KeyringPath);
        CephException.ThrowIfFailed(Librados.Create2(out nint cluster, "ceph", options.EntityName, 0), $"creating a Ceph client as {options.EntityName}");
        try
        {
            Configure(cluster, options);
            CephException.ThrowIfFailed(Librados.Connect(cluster), $"connecting to the Ceph cluster of {options.ConfPath} as {options.EntityName}");
            int result = Librados.IoctxCreate(cluster, options.Pool, out nint ioctx);
            if (result < 0)
            {
                throw new CephException($"opening Ceph pool '{options.Pool}' (does it exist, and may {options.EntityName} use it?)", result);
            }
            return new CephCluster(options, cluster, ioctx);
        }
        catch
        {
            Librados.Shutdown(cluster);
            throw;
        }
    }

    private static void Configure(nint cluster, CephConnectOptions options)
    {
        CephException.ThrowIfFailed(Librados.ConfReadFile(cluster, options.ConfPath), $"reading Ceph configuration {options.ConfPath}");
        if (options.KeyringPath is not null)
        {
            CephException.ThrowIfFailed(Librados.ConfSet(cluster, "keyring", options.KeyringPath), "setting the keyring path");
        }
        string seconds = Math.Max(1, (int)Math.Ceiling(options.OpTimeout.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
        foreach (string option in (ReadOnlySpan<string>)["rados_osd_op_timeout", "rados_mon_op_timeout", "client_mount_timeout"])
        {
            CephException.ThrowIfFailed(Librados.ConfSet(cluster, option, seconds), $"setting {option}");
        }
        // NVMe says deallocated blocks read back as zeroes when we report it (DLFEAT); librbd's default skips
        // the parts of a discard that do not cover whole objects, which would leave old data there.
        CephException.ThrowIfFailed(Librados.ConfSet(cluster, "rbd_skip_partial_discard", "false"), "setting rbd_skip_partial_discard");
        // librbd's cache (write-around in 16.2, once the first flush came) completes a write before the cluster has it;
        // when the cluster then fails to take it (OSD gone past the op timeout), the data is dropped and only the next
        // flush reports an error: a read in between returns the old data. Off, a write completes when it is stored, and
        // one the cluster did not take fails (Namespace Not Ready), so the host sends it again.
        CephException.ThrowIfFailed(Librados.ConfSet(cluster, "rbd_cache", "false"), "setting rbd_cache");
    }

    /// <summary>
    /// A keyring holds a cephx key that grants the cluster's data, so it is refused, as volume key files are, unless
    /// it is a regular file (a FIFO would block librados' read forever) owned by this process's user and readable by
    /// that user only. The key itself is never read here.
    /// </summary>
    private static void CheckKeyringMode(string? path)
    {
        if (path is null || OperatingSystem.IsWindows())
        {
            return;
        }
        if (Native.Stat(path, Native.STATX_TYPE | Native.STATX_MODE | Native.STATX_UID, out Native.StatX st) != 0)
        {
            throw new CephException($"keyring {path} does not exist", -CephErrno.ENOENT, verbatim: true);
        }
        if (!st.IsRegularFile)
        {
            throw new CephException($"keyring {path} is not a regular file", -CephErrno.EINVAL, verbatim: true);
        }
        uint user = Native.EffectiveUserId();
        if (st.Uid != user)
        {
            throw new CephException(
                $"keyring {path} is owned by uid {st.Uid}, not by the daemon's user (uid {user}); it holds a secret key: chown it to that user",
                -CephErrno.EINVAL, verbatim: true);
        }
        const int others = 0b000_111_111; // group and other rwx
        if ((st.Mode & others) != 0)
        {
            throw new CephException(
                $"keyring {path} has mode {Convert.ToString(st.Mode & 0xFFF, 8).PadLeft(4, '0')}; it holds a secret key and must be readable by its owner only (chmod 600)",
                -CephErrno.EINVAL, verbatim: true);
        }
    }

    /// <summary>The names of the pool's RBD images, sorted.</summary>
    public unsafe IReadOnlyList<string> ListImages()
    {
        nuint max = 64;
        while (true)
        {
            Librbd.ImageSpec[] specs = new Librbd.ImageSpec[(int)max];
            fixed (Librbd.ImageSpec* p = specs)
            {
                int result = Librbd.List2(IoContext, p, ref max);
                if (result == -CephErrno.ERANGE) // max now holds the count needed
                {
                    continue;
                }
                CephException.ThrowIfFailed(result, $"listing the images of Ceph pool '{PoolName}'");
                var names = new List<string>((int)max);
                for (int i = 0; i < (int)max; i++)
                {
                    names.Add(Marshal.PtrToStringUTF8((nint)p[i].Name)!);
                }
                Librbd.ImageSpecListCleanup(p, max);
                names.Sort(StringComparer.Ordinal);
                return names;
            }
        }
    }

    /// <summary>Creates a thin image (default features: layering, exclusive-lock, object-map, fast-diff, deep-flatten).</summary>
    public void CreateImage(string name, long sizeBytes)
    {
        int order = 0; // librbd's default: 4 MiB objects
        int result = Librbd.Create(IoContext, name, (ulong)sizeBytes, ref order);
        if (result == -CephErrno.EEXIST)
        {
            throw new CephException($"RBD image {PoolName}/{name} already exists", result, verbatim: true);
        }
        CephException.ThrowIfFailed(result, $"creating RBD image {PoolName}/{name}");
    }

    /// <summary>Removes an image (refused by librbd while it has snapshots or another client has it open).</summary>
    public void RemoveImage(string name)
    {
        int result = Librbd.Remove(IoContext, name);
        if (result >= 0)
        {
            return;
        }
        string what = $"removing RBD image {PoolName}/{name}";
        throw result switch
        {
            -CephErrno.EBUSY => new CephException($"{what}: another client has it open (or it has watchers)", result, verbatim: true),
            -CephErrno.ENOTEMPTY => new CephException($"{what}: it has snapshots; delete them first", result, verbatim: true),
            _ => new CephException(what, result),
        };
    }

    /// <summary>A copy-on-write clone of a protected snapshot, with the parent's features; refused (EEXIST) when the name is taken.</summary>
    public void CloneImage(RbdImage parent, string snapName, string name)
    {
        int order = 0;
        int result = Librbd.Clone(IoContext, parent.Name, snapName, IoContext, name, parent.Features, ref order);
        if (result == -CephErrno.EEXIST)
        {
            throw new CephException($"RBD image {PoolName}/{name} already exists", result, verbatim: true);
        }
        CephException.ThrowIfFailed(result, $"cloning {parent.Spec}@{snapName} to RBD image {PoolName}/{name}");
    }

    /// <summary>Renames an image of the pool (refused, EEXIST, when the new name is taken).</summary>
    public void RenameImage(string name, string newName)
    {
        int result = Librbd.Rename(IoContext, name, newName);
        if (result == -CephErrno.EEXIST)
        {
            throw new CephException($"RBD image {PoolName}/{newName} already exists", result, verbatim: true);
        }
        if (result == -CephErrno.ENOENT)
        {
            throw new CephException($"RBD image {PoolName}/{name} does not exist", result, verbatim: true);
        }
        CephException.ThrowIfFailed(result, $"renaming RBD image {PoolName}/{name} to {newName}");
    }

    /// <summary>Opens an image; with <paramref name="exclusive"/> it also takes the exclusive lock or is refused naming the holder.</summary>
    public RbdImage OpenImage(string name, bool exclusive) => RbdImage.Open(this, name, exclusive);

    public void Dispose()
    {
        nint ioctx = Interlocked.Exchange(ref _ioctx, 0);
        if (ioctx != 0)
        {
            Librados.IoctxDestroy(ioctx);
        }
        nint cluster = Interlocked.Exchange(ref _cluster, 0);
        if (cluster != 0)
        {
            Librados.Shutdown(cluster);
        }
    }
}
