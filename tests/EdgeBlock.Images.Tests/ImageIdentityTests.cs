namespace EdgeBlock.Images.Tests;

/// <summary><see cref="ImageReader.Identity"/>: the same for an unchanged image, different once any layer changed.</summary>
public sealed class ImageIdentityTests
{
    private static string IdentityOf(string path)
    {
        using ImageReader reader = ImageFile.Open(path);
        return reader.Identity();
    }

    [QemuImgFact]
    public void Identity_UnchangedChain_IsStable_AndAWriteToAnyLayerChangesIt()
    {
        using var dir = new TempDir();
        QemuImg.Ok("qemu-img", "create", "-f", "qcow2", dir["base.qcow2"], "8M");
        QemuImg.Ok("qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 64k", dir["base.qcow2"]);
        QemuImg.Ok("qemu-img", "create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", dir["top.qcow2"]);
        string before = IdentityOf(dir["top.qcow2"]);
        Assert.Equal(before, IdentityOf(dir["top.qcow2"]));
        string[] layers = before.Split('\n');
        Assert.Equal(2, layers.Length);
        Assert.StartsWith($"{dir["top.qcow2"]} size=", layers[0]);
        Assert.Matches(@" ino=\d+ mtime=\d+\.\d{9} sha256=[0-9a-f]{64}$", layers[1]);

        QemuImg.Ok("qemu-io", "-f", "qcow2", "-c", "write -P 0x22 1m 64k", dir["base.qcow2"]); // the backing file, under the top
        string after = IdentityOf(dir["top.qcow2"]);
        Assert.Equal(layers[0], after.Split('\n')[0]);
        Assert.NotEqual(layers[1], after.Split('\n')[1]);
    }

    [Fact]
    public void Identity_RawRewrittenWithTheSameTimestamp_ChangesByItsHash()
    {
        using var dir = new TempDir();
        string path = dir["disk.raw"];
        File.WriteAllBytes(path, new byte[8192]);
        QemuImg.Ok("touch", "-r", path, dir["stamp"]); // keeps the nanoseconds
        string before = IdentityOf(path);
        using (var file = File.OpenHandle(path, FileMode.Open, FileAccess.Write))
            RandomAccess.Write(file, new byte[] { 1 }, 100);
        QemuImg.Ok("touch", "-r", dir["stamp"], path); // as a copy tool that keeps times would
        string after = IdentityOf(path);
        Assert.NotEqual(before, after);
        Assert.Equal(before[..before.IndexOf(" sha256=", StringComparison.Ordinal)], after[..after.IndexOf(" sha256=", StringComparison.Ordinal)]);
    }
}
