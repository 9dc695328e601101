using EdgeBlock.Daemon.Management;

namespace EdgeBlock.Daemon.Tests;

/// <summary>The storage policy's view of a disk: the signatures blkid would find, and mounts read from mountinfo.</summary>
public sealed class DiskProbeTests
{
    private static byte[] With(int offset, params byte[] magic)
    {
        var head = new byte[DiskProbe.HeadBytes];
        magic.CopyTo(head, offset);
        return head;
    }

    [Theory]
    [InlineData(1080, new byte[] { 0x53, 0xEF }, "ext2/3/4")]
    [InlineData(0, new byte[] { (byte)'X', (byte)'F', (byte)'S', (byte)'B' }, "XFS")]
    [InlineData(510, new byte[] { 0x55, 0xAA }, "MBR")]
    [InlineData(512, new byte[] { (byte)'E', (byte)'F', (byte)'I', (byte)' ', (byte)'P', (byte)'A', (byte)'R', (byte)'T' }, "GPT")]
    [InlineData(512, new byte[] { (byte)'L', (byte)'A', (byte)'B', (byte)'E', (byte)'L', (byte)'O', (byte)'N', (byte)'E' }, "LVM2")]
    [InlineData(4086, new byte[] { (byte)'S', (byte)'W', (byte)'A', (byte)'P', (byte)'S', (byte)'P', (byte)'A', (byte)'C', (byte)'E', (byte)'2' }, "swap")]
    [InlineData(65600, new byte[] { (byte)'_', (byte)'B', (byte)'H', (byte)'R', (byte)'f', (byte)'S', (byte)'_', (byte)'M' }, "btrfs")]
    public void Signature_KnownMagic_IsNamedWithItsOffset(int offset, byte[] magic, string name)
    {
        string? what = DiskProbe.Signature(With(offset, magic));
        Assert.NotNull(what);
        Assert.Contains(name, what);
        Assert.Contains($"byte {offset}", what);
    }

    [Fact]
    public void Signature_ZeroesOrShortHead_IsNone()
    {
        Assert.Null(DiskProbe.Signature(new byte[DiskProbe.HeadBytes]));
        Assert.Null(DiskProbe.Signature(new byte[100]));
        Assert.False(DiskProbe.HoldsData(new byte[4096]));
        Assert.True(DiskProbe.HoldsData(With(4000, 1)));
    }

    [Fact]
    public void MountedAt_DeviceNumberOrSource_FindsTheMount()
    {
        const string mountinfo = """
            22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw
            35 22 7:3 / /mnt/with\040space rw,relatime shared:9 - ext4 /dev/loop3 rw
            36 22 0:40 / /srv rw - btrfs /dev/sdb rw
            """;
        Assert.Equal("/dev/loop3 on /mnt/with space", DiskProbe.MountedAt(mountinfo, ["7:3"], "/dev/loop9"));
        Assert.Equal("/dev/sdb on /srv", DiskProbe.MountedAt(mountinfo, ["8:16"], "/dev/sdb"));
        Assert.Null(DiskProbe.MountedAt(mountinfo, ["8:32"], "/dev/sdc"));
    }
}
