namespace EdgeBlock.Rbd.Tests.Support;

/// <summary>A fresh image on the test cluster, opened with the exclusive lock, with its block device; removed on dispose.</summary>
public sealed class OpenedImage : IAsyncDisposable
{
    private OpenedImage(CephCluster cluster, RbdImage image, RbdBlockDevice device)
    {
        Cluster = cluster;
        Image = image;
        Device = device;
    }

    public CephCluster Cluster { get; }

    public RbdImage Image { get; }

    public RbdBlockDevice Device { get; }

    /// <summary>
    /// Whether dispose removes the image. After the OSD was killed its watch on the image outlives the close
    /// for the OSD's watch timeout (30 s) and removal is refused meanwhile; the cluster is throwaway anyway.
    /// </summary>
    public bool RemoveOnDispose { get; set; } = true;

    public static OpenedImage Create(CephTestCluster ceph, long sizeBytes = 64 << 20, TimeSpan? timeout = null)
    {
        CephCluster cluster = CephCluster.Connect(ceph.Options(timeout));
        string name = CephTestCluster.NewImageName("t");
        cluster.CreateImage(name, sizeBytes);
        RbdImage image = cluster.OpenImage(name, exclusive: true);
        return new OpenedImage(cluster, image, new RbdBlockDevice(image));
    }

    public async ValueTask DisposeAsync()
    {
        await Device.DisposeAsync();
        Image.Dispose();
        try
        {
            if (RemoveOnDispose)
            {
                Cluster.RemoveImage(Image.Name);
            }
        }
        finally
        {
            Cluster.Dispose();
        }
    }
}
