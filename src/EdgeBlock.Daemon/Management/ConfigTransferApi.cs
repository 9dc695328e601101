using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace EdgeBlock.Daemon.Management;

/// <summary>
/// /v1/config: the whole desired state out (<c>GET ?format=edgeblock|nvmetcli&amp;strict=</c>) and in
/// (<c>POST /v1/config/import</c>, one change; <c>dry_run</c> answers what would change), and
/// <c>POST /v1/config/reload</c>: re-read the config file (as SIGHUP does).
/// </summary>
public static class ConfigTransferApi
{
    public static void Map(IEndpointRouteBuilder v1, ManagementService m)
    {
        v1.MapGet("/config", (string? format, bool? strict) =>
            ManagementApi.Run(() => Task.FromResult(Results.Ok(m.Export(format, strict ?? false))))).Produces<ConfigExportResult>()
            .ProducesProblem(400).ProducesProblem(409);
        v1.MapPost("/config/import", (ConfigImportRequest body) =>
            ManagementApi.Run(async () => Results.Ok(await m.ImportAsync(body)))).Produces<ConfigImportResult>()
            .ProducesProblem(400).ProducesProblem(409);
        // The same as SIGHUP, with the outcome as the answer instead of a log line.
        v1.MapPost("/config/reload", () =>
            ManagementApi.Run(async () => Results.Ok(await m.ReloadAsync()))).Produces<ConfigReloadResult>()
            .ProducesProblem(400).ProducesProblem(409);
    }
}
