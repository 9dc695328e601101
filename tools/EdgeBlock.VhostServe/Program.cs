// edgeblock-vhost-serve: export one file (or block device) as a vhost-user-blk back-end, for
// the interop tests and for trying the transport by hand:
//   dotnet run --project tools/EdgeBlock.VhostServe -- --socket S --file F [--size 256M] [--queues N] [--block-size 512|4096] [--read-only] [--latency-ms N]
// Then: qemu-system-x86_64 ... -object memory-backend-memfd,id=mem,size=1G,share=on -numa node,memdev=mem
//        -chardev socket,id=c0,path=S[,reconnect=1] -device vhost-user-blk-pci,chardev=c0,num-queues=N
// Prints "vhost-serve: listening on S" once the socket accepts connections; stops on SIGINT/SIGTERM.
using EdgeBlock.Storage;
using EdgeBlock.Transports.VhostUser;
using EdgeBlock.VhostServe;
using Microsoft.Extensions.Logging;

string? socket = null, file = null;
long size = 0;
int queues = 8, blockSize = 512, latencyMs = 0;
bool readOnly = false, verbose = false;
try
{
    for (int i = 0; i < args.Length; i++)
    {
        string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
        switch (args[i])
        {
            case "--socket": socket = Next(); break;
            case "--file": file = Next(); break;
            case "--size": size = ParseSize(Next()); break;
            case "--queues": queues = int.Parse(Next(), System.Globalization.CultureInfo.InvariantCulture); break;
            case "--block-size": blockSize = int.Parse(Next(), System.Globalization.CultureInfo.InvariantCulture); break;
            case "--read-only": readOnly = true; break;
            case "--latency-ms": latencyMs = int.Parse(Next(), System.Globalization.CultureInfo.InvariantCulture); break;
            case "-v" or "--verbose": verbose = true; break;
            case "-h" or "--help":
                Console.WriteLine("usage: vhost-serve --socket PATH --file PATH [--size N[K|M|G]] [--queues N] [--block-size 512|4096] [--read-only] [--latency-ms N] [-v]");
                return 0;
            default: throw new ArgumentException($"unknown argument {args[i]}");
        }
    }
    if (socket is null || file is null)
    {
        throw new ArgumentException("--socket and --file are required");
    }
}
catch (Exception e) when (e is ArgumentException or FormatException or OverflowException)
{
    Console.Error.WriteLine($"vhost-serve: {e.Message} (see --help)");
    return 1;
}

var logger = new ConsoleLogger(verbose ? LogLevel.Debug : LogLevel.Information);
await using FileBlockDevice fileDevice = FileBlockDevice.Open(file, size, blockSize);
IBlockDevice device = latencyMs > 0 ? new LatencyBlockDevice(fileDevice, TimeSpan.FromMilliseconds(latencyMs)) : fileDevice;
var options = new VhostUserBlkOptions { MaxQueues = queues, ReadOnly = readOnly };
await using var server = new VhostUserBlkServer(socket, device, options, logger);
server.Start();
Console.WriteLine($"vhost-serve: listening on {socket} ({device.BlockCount * device.BlockSize} bytes from {file}, direct I/O {fileDevice.UsesDirectIo}, io_uring {fileDevice.UsesIoUring}, deallocate {device.SupportsDeallocate}{(latencyMs > 0 ? $", {latencyMs} ms added latency" : "")})");

var stop = new TaskCompletionSource();
EdgeBlock.Hosting.InheritedSignals.Reclaim(); // a script's background job inherits SIGINT ignored
using var sigint = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGINT, c => { c.Cancel = true; stop.TrySetResult(); });
using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, c => { c.Cancel = true; stop.TrySetResult(); });
await stop.Task;
Console.WriteLine($"vhost-serve: stopping after {server.Connections} front-end connection(s)");
return 0;

static long ParseSize(string text)
{
    long unit = 1;
    char last = char.ToUpperInvariant(text[^1]);
    if (last is 'K' or 'M' or 'G' or 'T')
    {
        unit = last switch { 'K' => 1L << 10, 'M' => 1L << 20, 'G' => 1L << 30, _ => 1L << 40 };
        text = text[..^1];
    }
    return checked(long.Parse(text, System.Globalization.CultureInfo.InvariantCulture) * unit);
}
