using System.Globalization;

namespace EdgeBlock.Cli.Vm;

/// <summary>The machine `vm run` asks QEMU for. <see cref="ConsoleFile"/> null means the console goes to stdout.</summary>
internal sealed record QemuSettings(
    string Name, string Kernel, string? Initrd, long MemoryBytes, int Cpus, string? Append, string Accel,
    string? ConsoleFile, string QmpSocket, IReadOnlyList<string> ExtraArgs);

/// <summary>
/// How the guest reaches its disks: vhost-user sockets (the guest sees vda, vdb... in this order), or
/// NVMe/TCP through a user-mode NIC, with kernel arguments telling the guest's initramfs what to connect to.
/// </summary>
internal sealed record GuestDisks(IReadOnlyList<VhostDisk> Vhost, string? KernelArgs = null, bool UserNetwork = false);

/// <summary>One vhost-user-blk export: its socket and how many queues it serves.</summary>
internal sealed record VhostDisk(string Socket, int Queues);

/// <summary>QEMU's argv for a VM whose disks all come from EdgeBlock (a pure function, so it is unit-tested).</summary>
internal static class QemuCommandLine
{
    public static List<string> Build(QemuSettings s, GuestDisks disks)
    {
        string mem = $"{s.MemoryBytes >> 20}M";
        var argv = new List<string> { "-name", s.Name };
        // Stock Debian guests hang under KVM on some hosts, hence tcg as a choice; -cpu max gives TCG the crc32c/pclmul features.
        argv.AddRange(s.Accel == "kvm" ? ["-accel", "kvm", "-cpu", "host"] : ["-accel", "tcg", "-cpu", "max"]);
        argv.AddRange(["-m", mem, "-smp", Num(s.Cpus)]);
        if (disks.Vhost.Count > 0)
        {
            // A vhost-user back-end maps guest RAM itself: it must be a shared memfd of exactly -m.
            argv.AddRange(["-object", $"memory-backend-memfd,id=mem,size={mem},share=on", "-machine", "memory-backend=mem"]);
        }
        // -nodefaults: no default NIC, VGA, floppy or monitor; only what is listed here.
        argv.AddRange(["-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"]);
        argv.AddRange(["-serial", s.ConsoleFile is null ? "stdio" : "file:" + s.ConsoleFile]);
        argv.AddRange(["-qmp", $"unix:{Escape(s.QmpSocket)},server=on,wait=off"]);
        argv.AddRange(["-kernel", s.Kernel]);
        if (s.Initrd is not null) argv.AddRange(["-initrd", s.Initrd]);
        string append = string.Join(' ', new[] { "console=ttyS0 panic=-1", disks.KernelArgs, s.Append }.Where(a => !string.IsNullOrWhiteSpace(a)));
        argv.AddRange(["-append", append]);
        for (int i = 0; i < disks.Vhost.Count; i++)
        {
            argv.AddRange(["-chardev", $"socket,id=d{i},path={Escape(disks.Vhost[i].Socket)},reconnect=1"]);
            argv.AddRange(["-device", $"vhost-user-blk-pci,chardev=d{i},num-queues={Num(Math.Min(s.Cpus, disks.Vhost[i].Queues))}"]);
        }
        if (disks.UserNetwork) argv.AddRange(["-nic", "user,model=virtio-net-pci"]);
        argv.AddRange(s.ExtraArgs);
        return argv;
    }

    /// <summary>A value inside a QEMU option list: a comma is written twice.</summary>
    private static string Escape(string value) => value.Replace(",", ",,", StringComparison.Ordinal);

    private static string Num(int n) => n.ToString(CultureInfo.InvariantCulture);
}
