namespace EdgeBlock.Rbd.Tests.Support;

/// <summary>
/// A test that needs a real Ceph cluster. Skipped, with the reason, when ./test.sh could not install Ceph or
/// start its cluster (EDGEBLOCK_SKIP_CEPH holds why), or when the Ceph daemons or librbd are not installed.
/// </summary>
public sealed class CephFactAttribute : FactAttribute
{
    public CephFactAttribute()
    {
        Skip = WhyNot();
    }

    /// <summary>An allocation budget: Debug builds compile async state machines as classes, so every await allocates.</summary>
    public bool ReleaseOnly
    {
        get => false;
        init
        {
#if DEBUG
            Skip ??= value ? "allocation budgets are checked in Release builds (./test.sh)" : null;
#endif
        }
    }

    internal static string? WhyNot()
    {
        string? skip = Environment.GetEnvironmentVariable("EDGEBLOCK_SKIP_CEPH");
        if (!string.IsNullOrEmpty(skip))
        {
            return "Ceph tests skipped: " + skip;
        }
        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable("EDGEBLOCK_CEPH_DIR")))
        {
            return null;
        }
        foreach (string tool in (string[])["ceph-mon", "ceph-osd", "ceph", "rbd"])
        {
            if (!OnPath(tool))
            {
                return $"Ceph tests skipped: {tool} is not installed (apt-get install ceph-mon ceph-osd ceph-common librbd1)";
            }
        }
        return System.Runtime.InteropServices.NativeLibrary.TryLoad("librbd.so.1", out _)
            ? null
            : "Ceph tests skipped: librbd.so.1 cannot be loaded (apt-get install librbd1)";
    }

    private static bool OnPath(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(dir => File.Exists(Path.Combine(dir, tool)));
}
