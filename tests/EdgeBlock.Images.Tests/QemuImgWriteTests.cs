namespace EdgeBlock.Images.Tests;

/// <summary>Images our writers make pass `qemu-img check` and `qemu-img compare` calls them identical to the source.</summary>
public sealed class QemuImgWriteTests
{
    private static string Export(TempDir dir, ImageFormat format, Qcow2Compression compression)
    {
        string raw = dir["disk.raw"];
        TestImages.WriteRaw(raw);
        string output = dir[$"out.{format.Name()}"];
        using ImageReader source = ImageFile.Open(raw);
        using (IImageWriter writer = ImageWriters.Create(output, format, source.VirtualSize, compression))
        {
            ImageCopy.CopyTo(source, writer);
            writer.Complete();
        }
        return output;
    }

    private static void AssertCheckedAndIdentical(TempDir dir, string image, string format)
    {
        if (format == "qcow2")
        {
            string check = QemuImg.Ok("qemu-img", "check", "-f", "qcow2", image);
            Assert.Contains("No errors were found on the image.", check);
        }
        string compare = QemuImg.Ok("qemu-img", "compare", "-f", format, "-F", "raw", image, dir["disk.raw"]);
        Assert.Contains("Images are identical.", compare);
        using ImageReader ours = ImageFile.Open(image);
        Assert.True(File.ReadAllBytes(dir["disk.raw"]).AsSpan().SequenceEqual(TestImages.ReadAll(ours)), "our reader differs from the source");
    }

    [QemuImgTheory]
    [InlineData(Qcow2Compression.None)]
    [InlineData(Qcow2Compression.Deflate)]
    [InlineData(Qcow2Compression.Zstd)]
    public void Qcow2Writer_Export_PassesQemuImgCheckAndCompare(Qcow2Compression compression)
    {
        using var dir = new TempDir();
        string image = Export(dir, ImageFormat.Qcow2, compression);
        AssertCheckedAndIdentical(dir, image, "qcow2");
        string info = QemuImg.Ok("qemu-img", "info", image);
        if (compression == Qcow2Compression.Zstd) Assert.Contains("compression type: zstd", info);
        if (compression != Qcow2Compression.None)
            Assert.DoesNotContain(" 0.00% compressed clusters", QemuImg.Ok("qemu-img", "check", image));
        // Thin: the image is the data plus metadata, not the virtual size.
        Assert.InRange(new FileInfo(image).Length, 1, 2 << 20);
    }

    [QemuImgFact]
    public void Qcow2Writer_LargerThanOneL2TableAndOneRefcountBlock_PassesQemuImgCheck()
    {
        using var dir = new TempDir();
        string image = dir["big.qcow2"];
        // 512-byte clusters: one L2 table covers 32 KiB and one refcount block 128 clusters, so 1 MiB of data needs many of each.
        using (var writer = new Qcow2Writer(image, 8 << 20, clusterBits: 9))
        {
            byte[] block = new byte[1 << 20];
            new Random(7).NextBytes(block);
            writer.Write(3 << 20, block);
            writer.Complete();
        }
        Assert.Contains("No errors were found on the image.", QemuImg.Ok("qemu-img", "check", image));
        QemuImg.Ok("qemu-img", "convert", "-O", "raw", image, dir["big.raw"]);
        using ImageReader ours = ImageFile.Open(image);
        Assert.True(File.ReadAllBytes(dir["big.raw"]).AsSpan().SequenceEqual(TestImages.ReadAll(ours)));
    }

    [QemuImgFact]
    public void RawWriter_Export_IsSparseAndIdentical()
    {
        using var dir = new TempDir();
        string image = Export(dir, ImageFormat.Raw, Qcow2Compression.None);
        AssertCheckedAndIdentical(dir, image, "raw");
        using ImageReader written = ImageFile.Open(image);
        Assert.InRange(written.AllocatedBytes(), 1, 1 << 20); // holes where the source had none
    }
}
