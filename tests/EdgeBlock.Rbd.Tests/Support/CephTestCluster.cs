using System.Diagnostics;

[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace EdgeBlock.Rbd.Tests.Support;

/// <summary>
/// A real single-node Ceph cluster for the tests of one run: the one ./test.sh started (EDGEBLOCK_CEPH_DIR,
/// made by tests/ceph/cluster.sh), else one this fixture starts with that script in a temp directory on disk
/// (BlueStore needs O_DIRECT, so not /tmp when that is a tmpfs) and removes afterwards.
/// </summary>
public sealed class CephTestCluster : IDisposable
{
    private readonly bool _owned;

    public CephTestCluster()
    {
        string? given = Environment.GetEnvironmentVariable("EDGEBLOCK_CEPH_DIR");
        if (!string.IsNullOrEmpty(given))
        {
            Directory = given;
            return;
        }
        Directory = Path.Combine("/var/tmp", $"edgeblock-ceph-{Environment.ProcessId}-{Guid.NewGuid():N}"[..40]);
        _owned = true;
        (int exit, string output) = RunScript("start", Directory);
        if (exit != 0)
        {
            RunScript("stop", Directory);
            throw new InvalidOperationException($"the test Ceph cluster did not come up: {output}");
        }
        StartOutput = output.Trim();
    }

    /// <summary>The cluster's directory: ceph.conf, the admin keyring, edgeblock.keyring (client.edgeblock, 0600).</summary>
    public string Directory { get; }

    public string ConfPath => Path.Combine(Directory, "ceph.conf");

    public string KeyringPath => Path.Combine(Directory, "edgeblock.keyring");

    /// <summary>"ceph cluster up in N s, mon RSS ..." when this fixture started the cluster.</summary>
    public string? StartOutput { get; }

    /// <summary>Options for the least-privileged user the script creates (cephx, rbd rights on pool rbd).</summary>
    public CephConnectOptions Options(TimeSpan? timeout = null) =>
        new(ConfPath, "rbd", "edgeblock", KeyringPath) { OpTimeout = timeout ?? TimeSpan.FromSeconds(30) };

    /// <summary>Runs rbd(8) as client.edgeblock: a fresh librbd client, independent of the process under test.</summary>
    public string Rbd(params string[] args)
    {
        var start = new ProcessStartInfo("rbd") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in (string[])["-c", ConfPath, "--id", "edgeblock", "--keyring", KeyringPath, .. args])
        {
            start.ArgumentList.Add(a);
        }
        using Process process = Process.Start(start)!;
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"rbd {string.Join(' ', args)} failed ({process.ExitCode}): {stderr.Result}");
        }
        return stdout;
    }

    /// <summary>The whole image as a fresh librbd client reads it from the cluster (rbd export).</summary>
    public byte[] Export(string spec)
    {
        string file = Path.Combine(System.IO.Path.GetTempPath(), $"eb-export-{Guid.NewGuid():N}.raw");
        try
        {
            Rbd("export", spec, file);
            return File.ReadAllBytes(file);
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>Creates an image, runs the test on its name, and removes it whatever happened.</summary>
    public void WithImage(CephCluster cluster, string prefix, long sizeBytes, Action<string> test)
    {
        string name = NewImageName(prefix);
        cluster.CreateImage(name, sizeBytes);
        try
        {
            test(name);
        }
        finally
        {
            cluster.RemoveImage(name);
        }
    }

    /// <summary>tests/ceph/cluster.sh COMMAND DIR; its exit code and what it printed.</summary>
    public static (int Exit, string Output) RunScript(string command, string directory)
    {
        var start = new ProcessStartInfo(ScriptPath) { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(command);
        start.ArgumentList.Add(directory);
        using Process process = Process.Start(start)!;
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout + stderr.Result);
    }

    /// <summary>tests/ceph/cluster.sh, found by walking up from the test assembly.</summary>
    public static string ScriptPath
    {
        get
        {
            for (DirectoryInfo? dir = new(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                string candidate = Path.Combine(dir.FullName, "tests", "ceph", "cluster.sh");
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
            throw new FileNotFoundException("tests/ceph/cluster.sh not found above " + AppContext.BaseDirectory);
        }
    }

    /// <summary>A fresh image name, so tests sharing the cluster never meet.</summary>
    public static string NewImageName(string prefix) => $"{prefix}-{Guid.NewGuid():N}"[..(prefix.Length + 13)];

    public void Dispose()
    {
        if (_owned)
        {
            RunScript("stop", Directory);
        }
    }
}

[CollectionDefinition(Name)]
public sealed class CephCollection : ICollectionFixture<CephTestCluster>
{
    public const string Name = "ceph";
}
