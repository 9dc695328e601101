using System.CommandLine;
using EdgeBlock.Api;

namespace EdgeBlock.Cli;

/// <summary>What a command that talks to the daemon gets: the API client, its parse result, the two writers and Ctrl-C.</summary>
internal sealed record ApiInvocation(ApiClient Api, ParseResult Parse, TextWriter Out, TextWriter Error, CancellationToken Cancel = default);

/// <summary>
/// The one place that turns daemon answers into exit codes: a refusal prints the problem's
/// detail (exit 2), an unreachable daemon says how to start one (exit 3).
/// </summary>
internal static class ApiAction
{
    public static void Set(Command command, Option<string?> socket, Func<ApiInvocation, Task<int>> action)
    {
        command.SetAction(async (parse, cancellationToken) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            string path = parse.GetValue(socket) is { Length: > 0 } given ? given : ApiSocket.Default();
            using var api = new ApiClient(path);
            try
            {
                return await action(new ApiInvocation(api, parse, output, error, cancellationToken));
            }
            catch (DaemonRefusedException ex)
            {
                error.WriteLine($"edgeblock: refused: {ex.Detail}");
                return ManagementCommands.ExitRefused;
            }
            catch (DaemonUnreachableException ex)
            {
                error.WriteLine($"edgeblock: {ex.Message}");
                error.WriteLine("Start the daemon with `./edgeblock serve` (or point at a running one with --api-socket PATH or EDGEBLOCK_API_SOCKET).");
                return ManagementCommands.ExitUnreachable;
            }
        });
    }
}
