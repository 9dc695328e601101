using EdgeBlock.Daemon.Management;
using EdgeBlock.Volumes;

namespace EdgeBlock.Daemon.Pools;

/// <summary>Backends <c>volume:POOL/NAME</c>: their UUID and their export, refused with the pool's message.</summary>
public static class VolumeBackends
{
    /// <summary>The UUID of a new namespace: a volume's own (stable per volume), else a new one. Refuses an unknown pool or volume.</summary>
    public static Guid NewNamespaceUuid(PoolManager? pools, BackendSpec backend) =>
        backend.Kind != BackendKind.Volume ? Guid.NewGuid() : Refusing(() => Require(pools, backend).VolumeUuid(backend.PoolName, backend.VolumeName));

    /// <summary>Opens the volume for one namespace or export (<see cref="PoolManager.Export"/>).</summary>
    public static VolumeExport Export(PoolManager? pools, BackendSpec backend, Guid? uuid) =>
        Refusing(() => Require(pools, backend).Export(backend.PoolName, backend.VolumeName, uuid));

    private static PoolManager Require(PoolManager? pools, BackendSpec backend) =>
        pools ?? throw ManagementException.Invalid($"backend {backend}: this daemon has no pools");

    private static T Refusing<T>(Func<T> action)
    {
        try
        {
            return action();
        }
        catch (VolumeException ex)
        {
            throw PoolManager.Refusal(ex);
        }
    }
}
