using System.CommandLine;
using EdgeBlock.Cli;

var root = new RootCommand("EdgeBlock: the unified block layer of an edge virtualization host (NVMe-over-Fabrics target)")
{
    ServeCommand.Create(),
    BenchCommand.Create(),
};
ManagementCommands.AddTo(root);
ConfigCommands.AddTo(root);
PoolCommands.AddTo(root);
VhostCommands.AddTo(root);
HostCommands.AddTo(root);
FsCommands.AddTo(root);
StatsCommand.AddTo(root);
EdgeBlock.Cli.Vm.VmCommand.AddTo(root);
ImageCommands.AddTo(root);
return await root.Parse(args).InvokeAsync();
