using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace EdgeBlock.Daemon.Management;

/// <summary>/v1/vhost: vhost-user-blk exports, named by their socket path (<c>?socket=PATH</c>).</summary>
public static class VhostApi
{
    public static void Map(RouteGroupBuilder v1, ManagementService m)
    {
        v1.MapGet("/vhost", (string? socket) => ManagementApi.Run(() => Task.FromResult(
            socket == null ? Results.Ok(m.VhostExports()) : Results.Ok(m.VhostExport(socket))))).Produces<List<VhostInfo>>().ProducesProblem(404);
        v1.MapPost("/vhost", (AddVhostRequest body) => ManagementApi.Run(async () =>
        {
            var export = await m.AddVhostAsync(body);
            return Results.Created($"/v1/vhost?socket={Uri.EscapeDataString(export.Socket)}", export);
        })).Produces<VhostInfo>(201).ProducesProblem(400).ProducesProblem(404).ProducesProblem(409);
        v1.MapDelete("/vhost", (string? socket) => ManagementApi.Run(async () =>
        {
            if (string.IsNullOrEmpty(socket)) throw ManagementException.Invalid("give the export's socket: DELETE /v1/vhost?socket=PATH");
            await m.RemoveVhostAsync(socket);
            return Results.NoContent();
        })).Produces(204).ProducesProblem(400).ProducesProblem(404);
    }
}
