namespace EdgeBlock.Cli.Vm;

/// <summary>
/// The daemon-side objects a VM's disks need (vhost-user exports, or an NVMe/TCP subsystem): made before
/// QEMU starts, removed when it has exited. Only what this run created is removed.
/// </summary>
internal interface IVmDisks
{
    /// <summary>Creates what is missing; a refusal (unknown volume...) throws <see cref="DaemonRefusedException"/>.</summary>
    Task<GuestDisks> SetUpAsync(IReadOnlyList<string> volumes, int cpus);

    /// <summary>Removes what <see cref="SetUpAsync"/> created, also after a failure half-way; never throws (it warns).</summary>
    Task TearDownAsync();
}

/// <summary>Best-effort removal shared by the disk kinds: a failure is printed, the rest still goes.</summary>
internal static class Teardown
{
    public static async Task TryAsync(ApiClient api, TextWriter error, string what, string path)
    {
        try
        {
            await api.SendAsync(HttpMethod.Delete, path);
        }
        catch (Exception e) when (e is DaemonRefusedException or DaemonUnreachableException or HttpRequestException or TaskCanceledException)
        {
            error.WriteLine($"edgeblock: warning: could not remove {what}: {e.Message}");
        }
    }
}
