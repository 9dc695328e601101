using EdgeBlock.PduFault;

// Sends malformed NVMe/TCP PDUs to a target, one fresh connection per case, and checks each is answered
// with a C2HTermReq (expected FES/FEI) and a close. Exit 0 only when every case passes.
//   dotnet run --project tools/EdgeBlock.PduFault -- 127.0.0.1 4420 [--timeout-ms 5000]

if (args.Length is < 1 or > 4 || args[0] is "-h" or "--help")
{
    Console.Error.WriteLine("usage: EdgeBlock.PduFault <host> [port, default 4420] [--timeout-ms N]");
    return 2;
}
string host = args[0];
int port = 4420;
var timeout = TimeSpan.FromSeconds(5);
for (int i = 1; i < args.Length; i++)
{
    if (args[i] == "--timeout-ms" && i + 1 < args.Length && int.TryParse(args[i + 1], out int ms) && ms > 0) { timeout = TimeSpan.FromMilliseconds(ms); i++; }
    else if (int.TryParse(args[i], out int p) && p is > 0 and < 65536) port = p;
    else { Console.Error.WriteLine($"cannot understand argument '{args[i]}'"); return 2; }
}

int failed = 0;
foreach (var fault in PduFaultCases.All)
{
    var result = await PduFaultCases.RunAsync(fault, host, port, timeout);
    if (!result.Passed) failed++;
    Console.WriteLine(result.Passed ? $"PASS {fault.Name}" : $"FAIL {fault.Name}: {result.Detail}");
}

// The faults must have cost only their own connections: a new one still initializes.
try
{
    using var cts = new CancellationTokenSource(timeout);
    await using var connection = await RawPduConnection.ConnectAsync(host, port, cts.Token);
    await connection.InitializeAsync(false, false, cts.Token);
    Console.WriteLine("PASS still-accepting");
}
catch (Exception ex) when (ex is IOException or OperationCanceledException or System.Net.Sockets.SocketException)
{
    failed++;
    Console.WriteLine($"FAIL still-accepting: {ex.Message}");
}
return failed == 0 ? 0 : 1;
