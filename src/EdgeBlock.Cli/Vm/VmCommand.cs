using System.CommandLine;
using System.CommandLine.Invocation;
using System.Text.RegularExpressions;
using EdgeBlock.Api;

namespace EdgeBlock.Cli.Vm;

/// <summary>
/// `edgeblock vm run`: boots a QEMU VM whose disks all come from the running daemon (vhost-user exports
/// or an NVMe/TCP subsystem), so QEMU's block layer is not in the path. Exit codes: 0 the guest powered off,
/// 1 usage, 2 refused by the daemon, 3 no daemon, 4 QEMU could not be started; otherwise QEMU's own exit code.
/// </summary>
public static partial class VmCommand
{
    public const int ExitQemu = 4;

    /// <summary>Adds `vm` to a root that already has the management commands (their --api-socket option).</summary>
    public static void AddTo(RootCommand root)
    {
        var socket = root.Options.OfType<Option<string?>>().First(o => o.Name == "--api-socket");
        root.Subcommands.Add(new Command("vm", "Virtual machines whose disks are EdgeBlock volumes") { Run(socket) });
    }

    private static Command Run(Option<string?> socket)
    {
        var kernel = new Option<string>("--kernel") { Description = "The guest kernel (bzImage or vmlinux with a PVH entry)", Required = true, HelpName = "FILE" };
        var initrd = new Option<string?>("--initrd") { Description = "The initramfs (for nvme-tcp it must connect: see README)", HelpName = "FILE" };
        var disks = new Option<string[]>("--disk")
        {
            Description = "A volume as a disk, in order: vda, vdb... (repeatable)", Required = true, HelpName = "POOL/VOL",
            Arity = ArgumentArity.OneOrMore, AllowMultipleArgumentsPerToken = false,
        };
        var transport = new Option<string>("--transport") { Description = "How QEMU reaches the disks", DefaultValueFactory = _ => "vhost-user" };
        transport.AcceptOnlyFromAmong("vhost-user", "nvme-tcp");
        var mem = new Option<string>("--mem") { Description = "Guest RAM (e.g. 512M, 2G)", DefaultValueFactory = _ => "1G", HelpName = "SIZE" };
        var cpus = new Option<int>("--cpus") { Description = "vCPUs (also the most queues per vhost-user disk)", DefaultValueFactory = _ => 2 };
        var append = new Option<string?>("--append") { Description = "More kernel arguments (console=ttyS0 is always given)", HelpName = "ARGS" };
        var accel = new Option<string?>("--accel") { Description = "kvm or tcg (default: kvm when /dev/kvm is usable)" };
        accel.AcceptOnlyFromAmong("kvm", "tcg");
        var name = new Option<string?>("--name") { Description = "VM name: letters, digits, . _ - (default vm-PID)" };
        var console = new Option<string?>("--console") { Description = "Serial console: a file, or - for stdout (default DATA-DIR/vm/NAME.console.log)", HelpName = "FILE|-" };
        var qemu = new Option<string>("--qemu") { Description = "The QEMU binary", DefaultValueFactory = _ => "qemu-system-x86_64", HelpName = "PATH" };
        var qemuArgs = new Option<string[]>("--qemu-arg") { Description = "One more argument for QEMU, as is (repeatable)", HelpName = "ARG", AllowMultipleArgumentsPerToken = false };
        var stopTimeout = new Option<int>("--stop-timeout") { Description = "Seconds the guest gets to power off after Ctrl-C before QEMU is told to quit", DefaultValueFactory = _ => 30, HelpName = "SEC" };
        var command = new Command("run", """
            Boot a VM whose disks all come from the daemon, bypassing QEMU's block layer. Ctrl-C (or SIGTERM) powers
            the guest off (ACPI), after --stop-timeout QEMU is told to quit, then killed; Ctrl-C twice quits at once.
            Exports and subsystems this run created are removed when QEMU exits. Exit code: QEMU's (0 after the guest
            powered off; 1 when QEMU rejects its arguments), 1 usage, 2 refused by the daemon, 3 no daemon,
            4 QEMU could not be started (not installed: apt-get install qemu-system-x86).
            """)
        {
            kernel, initrd, disks, transport, mem, cpus, append, accel, name, console, qemu, qemuArgs, stopTimeout,
        };
        // Per option: a command-level validator runs before defaults are filled in.
        Check(kernel, v => FileError("--kernel", v));
        Check(initrd, v => FileError("--initrd", v));
        Check(name, NameError);
        Check(disks, v => DisksError(v ?? []));
        Check(mem, v => MemoryError(v ?? "", out _));
        Check(cpus, v => v is < 1 or > 64 ? $"--cpus {v}: from 1 to 64" : null);
        Check(stopTimeout, v => v < 0 ? "--stop-timeout: seconds, 0 or more" : null);

        // Through ApiAction for its exit codes, but invoked synchronously: for an asynchronous action
        // System.CommandLine would end the process 2 s after Ctrl-C, before QEMU is stopped and exports removed.
        var api = new Command("run");
        ApiAction.Set(api, socket, async c =>
        {
            var p = c.Parse;
            string? qemuPath = ExecutableSearch.Find(p.GetValue(qemu)!);
            if (qemuPath is null)
            {
                c.Error.WriteLine($"edgeblock: QEMU not found ({p.GetValue(qemu)}): install it (apt-get install qemu-system-x86) or give --qemu PATH");
                return ExitQemu;
            }
            MemoryError(p.GetValue(mem)!, out long memoryBytes);
            string vmName = p.GetValue(name) ?? $"vm-{Environment.ProcessId}";
            var volumes = p.GetValue(disks)!;
            int vcpus = p.GetValue(cpus);
            using var signals = new StopSignals();
            var status = ApiClient.Parse<StatusInfo>(await c.Api.SendAsync(HttpMethod.Get, "v1/status"));
            IVmDisks vmDisks = p.GetValue(transport) == "nvme-tcp"
                ? new NvmeTcpDisks(c.Api, vmName, c.Out, c.Error)
                : new VhostDisks(c.Api, vmName, status.DataDirectory, c.Out, c.Error);
            try
            {
                var guestDisks = await vmDisks.SetUpAsync(volumes, vcpus);
                if (signals.Token.IsCancellationRequested)
                {
                    c.Out.WriteLine($"vm {vmName}: interrupted before QEMU started");
                    return 130;
                }
                string? consoleFile = p.GetValue(console) switch
                {
                    "-" => null,
                    { Length: > 0 } f => Path.GetFullPath(f),
                    _ => VmPaths.ConsoleLog(status.DataDirectory, vmName),
                };
                string qmp = VmPaths.QmpSocket(status.DataDirectory, vmName);
                foreach (string? f in new[] { consoleFile, qmp }) if (f is not null) Directory.CreateDirectory(Path.GetDirectoryName(f)!);
                var settings = new QemuSettings(vmName, Path.GetFullPath(p.GetValue(kernel)!), p.GetValue(initrd) is { } i ? Path.GetFullPath(i) : null,
                    memoryBytes, vcpus, p.GetValue(append), p.GetValue(accel) ?? DefaultAccel(), consoleFile, qmp, p.GetValue(qemuArgs) ?? []);
                c.Out.WriteLine($"vm {vmName}: console {consoleFile ?? "on stdout"}; QMP {qmp}; accel {settings.Accel}");
                try
                {
                    return await new QemuRunner(vmName, c.Out).RunAsync(qemuPath, QemuCommandLine.Build(settings, guestDisks), qmp,
                        TimeSpan.FromSeconds(p.GetValue(stopTimeout)), signals);
                }
                catch (System.ComponentModel.Win32Exception e)
                {
                    c.Error.WriteLine($"edgeblock: could not start {qemuPath}: {e.Message}");
                    return ExitQemu;
                }
                finally
                {
                    File.Delete(qmp);
                }
            }
            finally
            {
                await vmDisks.TearDownAsync();
            }
        });
        command.SetAction(parse => ((AsynchronousCommandLineAction)api.Action!).InvokeAsync(parse).GetAwaiter().GetResult());
        return command;
    }

    private static void Check<T>(Option<T> option, Func<T?, string?> error) =>
        option.Validators.Add(r =>
        {
            if (error(r.GetValueOrDefault<T>()) is { } message) r.AddError(message);
        });

    /// <summary>KVM when /dev/kvm can be opened for reading and writing, else TCG.</summary>
    private static string DefaultAccel()
    {
        try
        {
            using var kvm = new FileStream("/dev/kvm", FileMode.Open, FileAccess.ReadWrite);
            return "kvm";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "tcg";
        }
    }

    internal static string? FileError(string option, string? path) =>
        path is null || File.Exists(path) ? null : $"{option} {path}: no such file";

    internal static string? NameError(string? name) =>
        name is null || ValidName().IsMatch(name) ? null : $"--name '{name}': use letters, digits, '.', '_' and '-' (at most 64, starting with a letter or digit)";

    internal static string? DisksError(IReadOnlyList<string> disks)
    {
        if (disks.Count == 0) return "give at least one --disk POOL/VOL";
        foreach (string d in disks)
        {
            string[] parts = d.Split('/');
            if (parts.Length != 2 || parts[0].Length == 0 || parts[1].Length == 0) return $"--disk '{d}': expected POOL/VOL (e.g. tank/vm1)";
        }
        return disks.GroupBy(d => d).FirstOrDefault(g => g.Count() > 1) is { } twice ? $"--disk {twice.Key} is given twice" : null;
    }

    internal static string? MemoryError(string text, out long bytes)
    {
        if (!Sizes.TryParse(text, out bytes, out string error)) return $"--mem: {error}";
        if (bytes < 64L << 20 || bytes % (1 << 20) != 0) return $"--mem {text}: a whole number of MiB, at least 64M";
        return null;
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    private static partial Regex ValidName();
}
