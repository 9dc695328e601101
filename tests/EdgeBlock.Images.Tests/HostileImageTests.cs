namespace EdgeBlock.Images.Tests;

/// <summary>
/// Each hostile image is refused with a message naming the problem, before anything sized by the file's claims is
/// allocated and without a read outside the file.
/// </summary>
public sealed class HostileImageTests
{
    private const ulong Copied = 1UL << 63;

    /// <summary>Opens the image and reads every range; answers the refusal.</summary>
    private static ImageException Refusal(string path, ImageOpenOptions? options = null)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        ImageException e = Assert.Throws<ImageException>(() =>
        {
            using ImageReader reader = ImageFile.Open(path, options);
            TestImages.CopyAll(reader);
        });
        // Nothing proportional to a claimed size: the valid image's own buffers (a few clusters) and the copy's test disk (4 MiB).
        Assert.InRange(GC.GetAllocatedBytesForCurrentThread() - before, 0, 8 << 20);
        Assert.StartsWith(Path.GetDirectoryName(path)!, e.Message); // names the file (of the chain) at fault
        return e;
    }

    private static void AssertRefused(Action<string> mutate, string expected, Qcow2Compression compression = Qcow2Compression.None)
    {
        using var dir = new TempDir();
        string path = HostileImages.Valid(dir["hostile.qcow2"], compression);
        mutate(path);
        Assert.Contains(expected, Refusal(path).Message);
    }

    [Fact]
    public void ValidCorpusBase_OpensAndReads() // the cases below fail because of their one change, not the base
    {
        using var dir = new TempDir();
        foreach (Qcow2Compression c in new[] { Qcow2Compression.None, Qcow2Compression.Deflate })
        {
            using ImageReader reader = ImageFile.Open(HostileImages.Valid(dir[$"valid-{c}.qcow2"], c));
            Assert.Equal(4 * HostileImages.ClusterSize, TestImages.CopyAll(reader).Written);
        }
    }

    [Fact]
    public void L1Offset_BeyondTheFile_IsRefused() =>
        AssertRefused(p => HostileImages.WriteU64(p, 40, 1UL << 40), "L1 table (l1_table_offset) at offset 1099511627776 (8 bytes) lies beyond the end of the file");

    [Fact]
    public void L1Offset_IntoTheHeader_IsRefused() =>
        AssertRefused(p => HostileImages.WriteU64(p, 40, 0), "L1 table (l1_table_offset) at offset 0 points into the header cluster");

    [Fact]
    public void RefcountTableOffset_BeyondTheFile_IsRefused() =>
        AssertRefused(p => HostileImages.WriteU64(p, 48, 1UL << 40), "refcount table (refcount_table_offset) at offset 1099511627776");

    [Fact]
    public void RefcountTableOffset_IntoTheHeader_IsRefused() =>
        AssertRefused(p => HostileImages.WriteU64(p, 48, 0), "refcount table (refcount_table_offset) at offset 0 points into the header cluster");

    [Fact]
    public void RefcountTableClusters_PastTheFile_IsRefused() =>
        AssertRefused(p => HostileImages.WriteU32(p, 56, 0x7fff_ffff), "lies beyond the end of the file");

    [Fact]
    public void L2TableOffset_BeyondTheFile_IsRefused() =>
        AssertRefused(p => HostileImages.WriteU64(p, (long)HostileImages.ReadU64(p, 40), Copied | (1UL << 40)), "an L2 table at offset 1099511627776");

    [Fact]
    public void L2TableOffset_Unaligned_IsRefused() =>
        AssertRefused(p => HostileImages.WriteU64(p, (long)HostileImages.ReadU64(p, 40), Copied | 512), "an L2 table at offset 512 is not aligned");

    [Fact]
    public void DataClusterOffset_BeyondTheFile_IsRefused() =>
        AssertRefused(p => HostileImages.WriteU64(p, HostileImages.FirstL2Entry(p), Copied | (1UL << 40)), "guest offset 0: its data cluster offset 1099511627776 lies beyond the end of the file");

    [Fact]
    public void CompressedClusterLength_PastTheEnd_IsRefused() =>
        AssertRefused(p =>
        {
            long entry = HostileImages.FirstL2Entry(p) + 8; // the second cluster compresses (0x42 bytes)
            Assert.NotEqual(0UL, HostileImages.ReadU64(p, entry) & (1UL << 62));
            // Moved to 100 bytes before the end of the file, with 255 more sectors than that.
            HostileImages.WriteU64(p, entry, (1UL << 62) | (0xffUL << 54) | (ulong)(new FileInfo(p).Length - 100));
        }, "its compressed data (", Qcow2Compression.Deflate);

    [Fact]
    public void CompressedCluster_Garbage_IsRefused() =>
        AssertRefused(p =>
        {
            ulong value = HostileImages.ReadU64(p, HostileImages.FirstL2Entry(p) + 8);
            HostileImages.Patch(p, (long)(value & ((1UL << 54) - 1)), new byte[] { 0xff, 0xff, 0xff, 0xff });
        }, "does not decompress", Qcow2Compression.Deflate);

    [Fact]
    public void VirtualSize_2To63_IsRefused() => AssertRefused(p => HostileImages.WriteU64(p, 24, 1UL << 63), "virtual size 9223372036854775808 is 2^63 or more");

    [Fact]
    public void VirtualSize_NotAMultipleOf512_IsRefused() => AssertRefused(p => HostileImages.WriteU64(p, 24, (4 << 20) - 1), "is not a multiple of 512");

    [Fact]
    public void VirtualSize_LargerThanTheL1TableCovers_IsRefused() =>
        AssertRefused(p => HostileImages.WriteU64(p, 24, 1UL << 62), "l1_size 1 is too small for virtual size 4611686018427387904");

    [Theory]
    [InlineData(8u)]
    [InlineData(22u)]
    [InlineData(0xffff_ffffu)]
    public void ClusterBits_OutOfRange_IsRefused(uint bits) => AssertRefused(p => HostileImages.WriteU32(p, 20, bits), $"cluster_bits {bits} is out of range");

    [Fact]
    public void L1Size_Overflowing_IsRefused() => AssertRefused(p => HostileImages.WriteU32(p, 36, 0xffff_fff0), "l1_size 4294967280 is out of range");

    [Fact]
    public void L1Size_Huge_IsRefusedWithoutAllocatingIt() => AssertRefused(p => HostileImages.WriteU32(p, 36, 0x7fff_ffff), "l1_size 2147483647 overflows");

    [Fact]
    public void TruncatedFile_ShorterThanTheHeader_IsRefused()
    {
        AssertRefused(p => { using var f = File.OpenHandle(p, FileMode.Open, FileAccess.Write); RandomAccess.SetLength(f, 50); }, "shorter than a qcow2 header (72 bytes): truncated");
        AssertRefused(p => { using var f = File.OpenHandle(p, FileMode.Open, FileAccess.Write); RandomAccess.SetLength(f, 90); }, "shorter than a qcow2 v3 header");
    }

    [Fact]
    public void TruncatedFile_CuttingTheTables_IsRefused() =>
        AssertRefused(p => { using var f = File.OpenHandle(p, FileMode.Open, FileAccess.Write); RandomAccess.SetLength(f, 3 * HostileImages.ClusterSize); }, "lies beyond the end of the file");

    [Fact]
    public void UnknownIncompatibleFeature_IsRefused() => AssertRefused(p => HostileImages.WriteU64(p, 72, 1UL << 10 | 1UL << 40), "unknown incompatible feature bits 10, 40 are set");

    [Fact]
    public void ExternalDataFile_IsRefused() => AssertRefused(p => HostileImages.WriteU64(p, 72, 1UL << 2), "external data file");

    [Fact]
    public void CorruptBit_IsRefused() => AssertRefused(p => HostileImages.WriteU64(p, 72, 1UL << 1), "marked corrupt");

    [Fact]
    public void Encrypted_IsRefused() => AssertRefused(p => HostileImages.WriteU32(p, 32, 1), "encrypted (crypt_method 1)");

    [Fact]
    public void CompressionType_Unknown_IsRefused() =>
        AssertRefused(p => { HostileImages.WriteU64(p, 72, 1UL << 3); HostileImages.Patch(p, 104, new byte[] { 7 }); }, "compression_type 7 is unknown");

    [Fact]
    public void HeaderExtension_LongerThanTheHeaderArea_IsRefused() =>
        AssertRefused(p => { HostileImages.WriteU32(p, 112, 0x1234); HostileImages.WriteU32(p, 116, 0x7fff_0000); }, "header extension 0x00001234 claims 2147418112 bytes");

    [Fact]
    public void BackingChain_Cycle_IsRefused()
    {
        using var dir = new TempDir();
        HostileImages.SetBacking(HostileImages.Valid(dir["a.qcow2"]), "b.qcow2");
        HostileImages.SetBacking(HostileImages.Valid(dir["b.qcow2"]), "a.qcow2");
        Assert.Contains("the backing chain loops back to this file", Refusal(dir["a.qcow2"]).Message);
    }

    [Fact]
    public void BackingChain_TooDeep_IsRefused()
    {
        using var dir = new TempDir();
        for (int i = 0; i <= ImageOpenOptions.DefaultMaxBackingDepth + 1; i++)
        {
            HostileImages.Valid(dir[$"{i}.qcow2"]);
            if (i > 0) HostileImages.SetBacking(dir[$"{i - 1}.qcow2"], $"{i}.qcow2");
        }
        Assert.Contains($"the backing chain is deeper than {ImageOpenOptions.DefaultMaxBackingDepth} images", Refusal(dir["0.qcow2"]).Message);
        // One fewer is fine.
        File.Delete(dir[$"{ImageOpenOptions.DefaultMaxBackingDepth + 1}.qcow2"]);
        HostileImages.Valid(dir[$"{ImageOpenOptions.DefaultMaxBackingDepth + 1}.qcow2"]);
        HostileImages.WriteU64(dir[$"{ImageOpenOptions.DefaultMaxBackingDepth}.qcow2"], 8, 0);
        using ImageReader ok = ImageFile.Open(dir["0.qcow2"]);
    }

    [Theory]
    [InlineData("../outside/base.qcow2")]
    [InlineData("/etc/hostname")]
    [InlineData("link/base.qcow2")]
    public void BackingFile_OutsideTheAllowedDirectory_IsRefused(string name)
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir["images"]);
        Directory.CreateDirectory(dir["outside"]);
        HostileImages.Valid(dir["outside/base.qcow2"]);
        Directory.CreateSymbolicLink(dir["images/link"], dir["outside"]); // a link inside pointing out
        HostileImages.SetBacking(HostileImages.Valid(dir["images/top.qcow2"]), name);
        Assert.Contains($"backing file '{name}' resolves to", Refusal(dir["images/top.qcow2"]).Message);
        // Allowed explicitly, the same chain opens.
        if (!name.StartsWith('/'))
        {
            using ImageReader ok = ImageFile.Open(dir["images/top.qcow2"], new ImageOpenOptions { AllowedDirectories = [dir.Path] });
            Assert.NotNull(ok.Backing);
        }
    }

    [Fact]
    public void BackingFile_Protocol_IsRefused() =>
        AssertRefused(p => HostileImages.SetBacking(p, "nbd://example.com/disk"), "is not a file name");
}
