using System.Text.Json;
using EdgeBlock.Api;
using EdgeBlock.Daemon.Pools;
using EdgeBlock.Volumes;

namespace EdgeBlock.Cli;

/// <summary>
/// The boundary between the CLI's two kinds of command. `serve` (ServeCommand.cs) and `pool check --offline`
/// (here) run daemon code in this process; they are the only files that may use EdgeBlock.Daemon and the layers
/// below it. Every other command is a client of the management API and compiles against EdgeBlock.Api alone
/// (tests/EdgeBlock.Cli.Tests/CliBoundaryTests.cs holds them to it).
/// </summary>
internal static class InProcess
{
    /// <summary>`pool check --offline DATA-DIR`: checks a pool no daemon has open; the answer is the API's JSON.</summary>
    public static async Task<string> CheckPoolOfflineAsync(string dataDirectory, string pool)
    {
        try
        {
            var report = await PoolContracts.CheckOfflineAsync(dataDirectory, pool);
            return JsonSerializer.Serialize(report, ApiJson.Options);
        }
        catch (VolumeException e)
        {
            throw new DaemonRefusedException(0, "pool check", e.Message + " (is the daemon still running? stop it first, or check through it without --offline)");
        }
    }
}
