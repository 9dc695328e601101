namespace EdgeBlock.Images.Tests;

/// <summary>Images qemu-img makes read back byte for byte as `qemu-img convert -O raw` of them, and copy thin.</summary>
public sealed class QemuImgReadTests
{
    /// <summary>Opens the image, checks both the reader and the thin copy against qemu's raw conversion; answers the reader's info.</summary>
    private static ImageInfo AssertReadsAsQemu(TempDir dir, string image, long maxWritten)
    {
        byte[] expected = TestImages.QemuRaw(dir, image);
        using ImageReader reader = ImageFile.Open(image);
        Assert.Equal(expected.Length, reader.VirtualSize);
        Assert.True(expected.AsSpan().SequenceEqual(TestImages.ReadAll(reader)), "read differs from qemu-img convert -O raw");
        (byte[] copied, long written) = TestImages.CopyAll(reader);
        Assert.True(expected.AsSpan().SequenceEqual(copied), "thin copy differs from qemu-img convert -O raw");
        Assert.InRange(written, 1, maxWritten);
        // The daemon's import: four workers on forked readers (their own caches, the same files, the backing chain too).
        (byte[] parallel, long parallelWritten) = TestImages.CopyAll(reader, workers: 4);
        Assert.True(expected.AsSpan().SequenceEqual(parallel), "thin copy with 4 workers differs from qemu-img convert -O raw");
        Assert.Equal(written, parallelWritten);
        return ImageInfo.Of(reader);
    }

    /// <summary>Non-zero bytes of the test disk, rounded to 4 KiB blocks: what a thin copy writes.</summary>
    private const long DataBytes = 65536 + 4096 + 196608 + 12288 + 65536 + 8192;

    private static string Convert(TempDir dir, string name, params string[] options)
    {
        string raw = dir["disk.raw"];
        if (!File.Exists(raw)) TestImages.WriteRaw(raw);
        QemuImg.Ok("qemu-img", ["convert", "-f", "raw", "-O", "qcow2", .. options, raw, dir[name]]);
        return dir[name];
    }

    [QemuImgFact]
    public void Qcow2V2_FromQemuImgConvert_ReadsAsQemuRawAndCopiesThin()
    {
        using var dir = new TempDir();
        ImageInfo info = AssertReadsAsQemu(dir, Convert(dir, "v2.qcow2", "-o", "compat=0.10"), DataBytes);
        Assert.Equal(2, info.Version);
    }

    [QemuImgFact]
    public void Qcow2V3_FromQemuImgConvert_ReadsAsQemuRawAndCopiesThin()
    {
        using var dir = new TempDir();
        ImageInfo info = AssertReadsAsQemu(dir, Convert(dir, "v3.qcow2", "-o", "compat=1.1"), DataBytes);
        Assert.Equal(3, info.Version);
    }

    [QemuImgFact]
    public void Qcow2Deflate_FromQemuImgConvertC_ReadsAsQemuRaw()
    {
        using var dir = new TempDir();
        ImageInfo info = AssertReadsAsQemu(dir, Convert(dir, "deflate.qcow2", "-c"), DataBytes);
        Assert.Equal("deflate", info.CompressionType);
    }

    [QemuImgFact]
    public void Qcow2Zstd_FromQemuImgConvertC_ReadsAsQemuRaw()
    {
        using var dir = new TempDir();
        ImageInfo info = AssertReadsAsQemu(dir, Convert(dir, "zstd.qcow2", "-c", "-o", "compression_type=zstd"), DataBytes);
        Assert.Equal("zstd", info.CompressionType);
    }

    [QemuImgFact]
    public void Qcow2ExtendedL2_SubclusterWritesAndZeroes_ReadAsQemuRaw()
    {
        using var dir = new TempDir();
        string image = Convert(dir, "ext.qcow2", "-o", "extended_l2=on,cluster_size=16k");
        // Sub-cluster writes (512-byte subclusters) into unallocated clusters, and zeroes over part of a data cluster;
        // the copy widens the 512-byte one to its 4 KiB block.
        QemuImg.Ok("qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 12m 8k", "-c", "write -P 0xa5 12648448 4k", "-c", "write -P 0x77 13632512 512",
            "-c", "write -z 1056768 8k", image);
        ImageInfo info = AssertReadsAsQemu(dir, image, DataBytes + 16384);
        Assert.True(info.ExtendedL2);
        using ImageReader reader = ImageFile.Open(image);
        Assert.Equal(new ImageExtent(12 << 20, 8192, ExtentKind.Data), reader.Status(12 << 20, 1 << 20));
        Assert.Equal(ExtentKind.Zero, reader.Status((1 << 20) + 8192, 4096).Kind);
        Assert.Equal(new ImageExtent(13632512, 512, ExtentKind.Data), reader.Status(13632512, 1 << 20));
        Assert.Equal(ExtentKind.Unallocated, reader.LayerStatus(13632512 - 512, 512).Kind);
    }

    [QemuImgFact]
    public void BackingChain_ThreeDeepWithRelativeNames_ReadsAsQemuRaw()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir["chain"]);
        string raw = dir["disk.raw"];
        TestImages.WriteRaw(raw);
        QemuImg.Ok("qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-o", "compat=0.10", raw, dir["chain/base.qcow2"]);
        QemuImg.Ok("qemu-img", "create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", dir["chain/mid.qcow2"]);
        QemuImg.Ok("qemu-io", "-f", "qcow2", "-c", "write -P 0x11 2m 192k", "-c", "write -P 0x22 9469952 4k", dir["chain/mid.qcow2"]);
        QemuImg.Ok("qemu-img", "create", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", dir["chain/top.qcow2"]);
        // Zero clusters in the top hide data of both images below.
        QemuImg.Ok("qemu-io", "-f", "qcow2", "-c", "write -z 0 64k", "-c", "write -z 2m 64k", "-c", "write -P 0x33 7m 64k", dir["chain/top.qcow2"]);
        ImageInfo info = AssertReadsAsQemu(dir, dir["chain/top.qcow2"], DataBytes + (192 << 10) + 65536 + 65536);
        Assert.Equal("mid.qcow2", info.BackingFile);
        Assert.Equal(dir["chain/base.qcow2"], info.Backing!.Backing!.Path);
        Assert.Null(info.Backing.Backing.Backing);
    }

    [QemuImgFact]
    public void RawSparseFile_HolesAndZeroBlocks_AreNotCopied()
    {
        using var dir = new TempDir();
        byte[] disk = TestImages.WriteRaw(dir["disk.raw"]);
        using ImageReader reader = ImageFile.Open(dir["disk.raw"]);
        Assert.Equal(ImageFormat.Raw, reader.Format);
        Assert.Equal(TestImages.Size, reader.VirtualSize);
        // SEEK_DATA/SEEK_HOLE: the holes are reported without reading them (file systems round data to their blocks).
        Assert.InRange(reader.AllocatedBytes(), DataBytes, DataBytes + (131072 + 16 * 4096) * 2);
        (byte[] copied, long written) = TestImages.CopyAll(reader);
        Assert.True(disk.AsSpan().SequenceEqual(copied));
        Assert.Equal(DataBytes, written); // the written zeros are skipped too
        Assert.True(disk.AsSpan().SequenceEqual(TestImages.QemuRaw(dir, dir["disk.raw"])));
    }
}
