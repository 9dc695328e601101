using System.CommandLine;
using EdgeBlock.Cli;
using EdgeBlock.Cli.Vm;

namespace EdgeBlock.Cli.Tests;

public class VmRunTests
{
    private static QemuSettings Settings(int cpus = 2, string? console = "/var/lib/eb/vm/a.console.log") =>
        new("a", "/boot/vmlinuz", "/boot/initrd", 1L << 30, cpus, "quiet", "tcg", console, "/var/lib/eb/vm/a.qmp", ["-snapshot-x"]);

    /// <summary>The value following each occurrence of an option, in order.</summary>
    private static List<string> Values(List<string> argv, string option) =>
        argv.Select((a, i) => (a, i)).Where(p => p.a == option).Select(p => argv[p.i + 1]).ToList();

    [Fact]
    public void VhostUserDisks_GetSharedMemfdRam_AndOneDeviceEachInOrder()
    {
        var argv = QemuCommandLine.Build(Settings(cpus: 4), new GuestDisks([new VhostDisk("/d/vm-a-0.sock", 8), new VhostDisk("/d/x,y.sock", 1)]));

        Assert.Equal(["memory-backend-memfd,id=mem,size=1024M,share=on"], Values(argv, "-object"));
        Assert.Equal(["memory-backend=mem"], Values(argv, "-machine"));
        Assert.Equal("1024M", Values(argv, "-m").Single());
        Assert.Equal(["socket,id=d0,path=/d/vm-a-0.sock,reconnect=1", "socket,id=d1,path=/d/x,,y.sock,reconnect=1"], Values(argv, "-chardev"));
        // num-queues = min(vCPUs, the export's queues)
        Assert.Equal(["vhost-user-blk-pci,chardev=d0,num-queues=4", "vhost-user-blk-pci,chardev=d1,num-queues=1"], Values(argv, "-device"));
        Assert.Empty(Values(argv, "-nic"));
        Assert.Equal("console=ttyS0 panic=-1 quiet", Values(argv, "-append").Single());
    }

    [Fact]
    public void MachineConsoleAndControl_AreAsAsked()
    {
        var argv = QemuCommandLine.Build(Settings(), new GuestDisks([new VhostDisk("/s", 8)]));

        Assert.Equal(["-accel", "tcg", "-cpu", "max"], argv.Skip(argv.IndexOf("-accel")).Take(4));
        Assert.Contains("-nodefaults", argv);
        Assert.Contains("-no-reboot", argv);
        Assert.Equal("none", Values(argv, "-display").Single());
        Assert.Equal("file:/var/lib/eb/vm/a.console.log", Values(argv, "-serial").Single());
        Assert.Equal("unix:/var/lib/eb/vm/a.qmp,server=on,wait=off", Values(argv, "-qmp").Single());
        Assert.Equal("/boot/initrd", Values(argv, "-initrd").Single());
        Assert.Equal("-snapshot-x", argv[^1]); // --qemu-arg comes last, as given
        Assert.Equal("stdio", Values(QemuCommandLine.Build(Settings(console: null) with { Accel = "kvm" }, new GuestDisks([])), "-serial").Single());
        Assert.Equal(["-accel", "kvm", "-cpu", "host"], QemuCommandLine.Build(Settings() with { Accel = "kvm" }, new GuestDisks([])).SkipWhile(a => a != "-accel").Take(4));
    }

    [Fact]
    public void NvmeTcp_GetsAUserNicAndKernelArguments_ButNoVhostDevices()
    {
        const string args = "edgeblock.nvme=10.0.2.2:4420 edgeblock.nqn=nqn.2014-08.io.edgeblock:vm:a edgeblock.hostnqn=nqn.2014-08.org.nvmexpress:uuid:1";
        var argv = QemuCommandLine.Build(Settings(), new GuestDisks([], args, UserNetwork: true));

        Assert.Equal(["user,model=virtio-net-pci"], Values(argv, "-nic"));
        Assert.Equal($"console=ttyS0 panic=-1 {args} quiet", Values(argv, "-append").Single());
        Assert.Empty(Values(argv, "-chardev"));
        Assert.Empty(Values(argv, "-device"));
        Assert.Empty(Values(argv, "-object"));
    }

    [Theory]
    [InlineData("10.0.2.2:4420", "127.0.0.1:4420")]
    [InlineData("10.0.2.2:4421", "0.0.0.0:4421")]
    [InlineData("10.0.2.2:4422", "[::]:4422")]
    [InlineData("10.0.2.2:4420", "192.0.2.10:4419", "127.0.0.1:4420")] // the loopback one is preferred
    [InlineData("192.0.2.10:4419", "192.0.2.10:4419")]
    [InlineData(null, "[::1]:4420")]
    [InlineData(null)]
    public void Listener_LoopbackOrAny_IsReachedByTheGuestAsTheSlirpHost(string? expected, params string[] listeners) =>
        Assert.Equal(expected, NvmeTcpDisks.GuestTarget(listeners));

    [Fact]
    public void SocketPath_TooLongToBind_MovesToTheRuntimeDirectory()
    {
        Assert.Equal("/d/vhost/vm-a-0.sock", VmPaths.VhostSocket("/d", "a", 0));
        string deep = "/" + new string('x', 100);
        Assert.Equal("/run/user/0/edgeblock-vm-a-1.sock", VmPaths.Socket(Path.Combine(deep, "vhost", "vm-a-1.sock"), "/run/user/0"));
    }

    private static RootCommand Root()
    {
        var root = ManagementCommands.CreateRoot();
        VmCommand.AddTo(root);
        return root;
    }

    private static readonly string Kernel = typeof(VmRunTests).Assembly.Location; // any file that exists

    [Theory]
    [InlineData("--kernel /no/such/kernel --disk t/a", "--kernel /no/such/kernel: no such file")]
    [InlineData("--kernel K --initrd /no/such/initrd --disk t/a", "--initrd /no/such/initrd: no such file")]
    [InlineData("--kernel K", "--disk")]
    [InlineData("--kernel K --disk tank", "--disk 'tank': expected POOL/VOL")]
    [InlineData("--kernel K --disk t/a/b", "--disk 't/a/b': expected POOL/VOL")]
    [InlineData("--kernel K --disk t/a --disk t/a", "--disk t/a is given twice")]
    [InlineData("--kernel K --disk t/a --mem lots", "--mem: 'lots' is not a size")]
    [InlineData("--kernel K --disk t/a --mem 32M", "at least 64M")]
    [InlineData("--kernel K --disk t/a --mem 100000000", "a whole number of MiB")]
    [InlineData("--kernel K --disk t/a --name a/b", "--name 'a/b': use letters")]
    [InlineData("--kernel K --disk t/a --name -x", "--name '-x'")]
    [InlineData("--kernel K --disk t/a --cpus 0", "--cpus 0: from 1 to 64")]
    [InlineData("--kernel K --disk t/a --transport nbd", "nbd")]
    [InlineData("--kernel K --disk t/a --accel hvf", "hvf")]
    public void BadArguments_AreRefused_BeforeAnythingStarts(string args, string error)
    {
        var result = Root().Parse(["vm", "run", .. args.Replace("K", Kernel).Split(' ')]);
        Assert.Contains(result.Errors, e => e.Message.Contains(error, StringComparison.Ordinal));
    }

    [Fact]
    public void GoodArguments_ParseWithoutErrors()
    {
        var result = Root().Parse(["vm", "run", "--kernel", Kernel, "--disk", "t/a", "--disk", "t/b", "--name", "web-1.x_y",
            "--mem", "512M", "--transport", "nvme-tcp", "--qemu-arg", "-s", "--qemu-arg", "-S"]);
        Assert.Empty(result.Errors);
    }

    private static (int Code, string Error) Invoke(params string[] args)
    {
        var error = new StringWriter();
        int code = Root().Parse(["vm", "run", "--kernel", Kernel, "--disk", "t/a", .. args])
            .Invoke(new InvocationConfiguration { Output = new StringWriter(), Error = error });
        return (code, error.ToString());
    }

    [Fact]
    public void MissingQemu_IsRefusedWithExit4_AndHowToInstallIt()
    {
        var (code, error) = Invoke("--qemu", "/no/such/qemu-system-x86_64");
        Assert.Equal(VmCommand.ExitQemu, code);
        Assert.Contains("apt-get install qemu-system-x86", error);
    }

    [Fact]
    public void NoDaemon_IsExit3()
    {
        var (code, error) = Invoke("--qemu", "/bin/true", "--api-socket", Path.Combine(Path.GetTempPath(), $"none-{Guid.NewGuid():N}.sock"));
        Assert.Equal(ManagementCommands.ExitUnreachable, code);
        Assert.Contains("no EdgeBlock daemon answers", error);
    }
}
