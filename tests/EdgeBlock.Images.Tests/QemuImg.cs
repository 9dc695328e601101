using System.Diagnostics;

namespace EdgeBlock.Images.Tests;

/// <summary>The real peer: qemu-img and qemu-io (Debian's qemu-utils, which ./test.sh installs).</summary>
internal static class QemuImg
{
    public static string? Find(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(d => Path.Join(d, tool)).FirstOrDefault(File.Exists);

    public static bool Available => Find("qemu-img") != null && Find("qemu-io") != null;

    public const string Missing = "qemu-img and qemu-io are not installed (Debian package qemu-utils; ./test.sh installs it)";

    /// <summary>Runs qemu-img (or another tool) and answers its exit code and output.</summary>
    public static (int Code, string Output) Run(string tool, params string[] args)
    {
        var start = new ProcessStartInfo(Find(tool) ?? tool) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args) start.ArgumentList.Add(a);
        using Process p = Process.Start(start)!;
        Task<string> stdout = p.StandardOutput.ReadToEndAsync(), stderr = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        return (p.ExitCode, stdout.Result + stderr.Result);
    }

    /// <summary>Runs a tool and fails the test, with its output, unless it exits 0.</summary>
    public static string Ok(string tool, params string[] args)
    {
        (int code, string output) = Run(tool, args);
        Assert.True(code == 0, $"{tool} {string.Join(' ', args)} exited {code}: {output}");
        return output;
    }
}

/// <summary>A fact that needs qemu-img: skipped, saying why, only when it is genuinely missing.</summary>
public sealed class QemuImgFactAttribute : FactAttribute
{
    public QemuImgFactAttribute()
    {
        if (!QemuImg.Available) Skip = QemuImg.Missing;
    }
}

/// <summary>A theory that needs qemu-img (see <see cref="QemuImgFactAttribute"/>).</summary>
public sealed class QemuImgTheoryAttribute : TheoryAttribute
{
    public QemuImgTheoryAttribute()
    {
        if (!QemuImg.Available) Skip = QemuImg.Missing;
    }
}

/// <summary>A scratch directory removed after the test.</summary>
public sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("edgeblock-images-").FullName;

    public string this[string name] => System.IO.Path.Join(Path, name);

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
