using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace EdgeBlock.Daemon.Management;

/// <summary>The HTTP/JSON API (version 1) over the daemon's Unix socket. Refusals are RFC 7807 problem+json.</summary>
public static class ManagementApi
{
    public static void Map(IEndpointRouteBuilder app, ManagementService m)
    {
        var v1 = app.MapGroup("/v1");

        v1.MapGet("/status", () => Results.Ok(m.Status())).Produces<StatusInfo>();

        v1.MapGet("/listeners", () => Results.Ok(m.Listeners())).Produces<List<ListenerInfo>>();
        v1.MapPost("/listeners", (AddListenerRequest body) =>
            Run(async () => Results.Created($"/v1/listeners/{Uri.EscapeDataString(body.Address ?? "")}", await m.AddListenerAsync(body)))).Produces<ListenerInfo>(201).Refusals();
        v1.MapDelete("/listeners/{address}", (string address) =>
            Run(async () => { await m.RemoveListenerAsync(address); return Results.NoContent(); })).Produces(204).Refusals();

        v1.MapGet("/subsystems", () => Results.Ok(m.Subsystems())).Produces<List<SubsystemInfo>>();
        v1.MapPost("/subsystems", (CreateSubsystemRequest body) =>
            Run(async () => Results.Created($"/v1/subsystems/{Uri.EscapeDataString(body.Nqn ?? "")}", await m.CreateSubsystemAsync(body)))).Produces<SubsystemInfo>(201).Refusals();
        v1.MapGet("/subsystems/{nqn}", (string nqn) => Run(() => Task.FromResult(Results.Ok(m.Subsystem(nqn))))).Produces<SubsystemInfo>().Refusals();
        v1.MapPatch("/subsystems/{nqn}", (string nqn, UpdateSubsystemRequest body) =>
            Run(async () => Results.Ok(await m.UpdateSubsystemAsync(nqn, body)))).Produces<SubsystemInfo>().Refusals();
        v1.MapDelete("/subsystems/{nqn}", (string nqn) =>
            Run(async () => { await m.DeleteSubsystemAsync(nqn); return Results.NoContent(); })).Produces(204).Refusals();

        v1.MapPost("/subsystems/{nqn}/hosts", (string nqn, AddHostRequest body) =>
            Run(async () => Results.Ok(await m.AddHostAsync(nqn, body)))).Produces<SubsystemInfo>().Refusals();
        v1.MapDelete("/subsystems/{nqn}/hosts/{hostnqn}", (string nqn, string hostnqn) =>
            Run(async () => Results.Ok(await m.RemoveHostAsync(nqn, hostnqn)))).Produces<SubsystemInfo>().Refusals();

        v1.MapPut("/subsystems/{nqn}/hosts/{hostnqn}/dhchap", (string nqn, string hostnqn, SetHostAuthRequest body) =>
            Run(async () => Results.Ok(await m.SetHostAuthAsync(nqn, hostnqn, body)))).Produces<SubsystemInfo>().Refusals();
        v1.MapDelete("/subsystems/{nqn}/hosts/{hostnqn}/dhchap", (string nqn, string hostnqn) =>
            Run(async () => Results.Ok(await m.SetHostAuthAsync(nqn, hostnqn, null)))).Produces<SubsystemInfo>().Refusals();

        v1.MapGet("/subsystems/{nqn}/namespaces", (string nqn) => Run(() => Task.FromResult(Results.Ok(m.Namespaces(nqn))))).Produces<List<NamespaceInfo>>().Refusals();
        v1.MapPost("/subsystems/{nqn}/namespaces", (string nqn, AddNamespaceRequest body) =>
            Run(async () =>
            {
                var ns = await m.AddNamespaceAsync(nqn, body);
                return Results.Created($"/v1/subsystems/{Uri.EscapeDataString(nqn)}/namespaces/{ns.Nsid}", ns);
            })).Produces<NamespaceInfo>(201).Refusals();
        v1.MapDelete("/subsystems/{nqn}/namespaces/{nsid}", (string nqn, uint nsid) =>
            Run(async () => { await m.RemoveNamespaceAsync(nqn, nsid); return Results.NoContent(); })).Produces(204).Refusals();

        v1.MapGet("/hosts", () => Results.Ok(m.Hosts())).Produces<List<HostInfo>>();

        v1.MapGet("/stats", () => Results.Ok(m.Stats())).Produces<StatsInfo>();
        v1.MapGet("/subsystems/{nqn}/namespaces/{nsid}/stats", (string nqn, uint nsid) =>
            Run(() => Task.FromResult(Results.Ok(m.NamespaceStats(nqn, nsid))))).Produces<NamespaceStats>().Refusals();

        // ---- config import/export (nvmetcli and edgeblock formats): ConfigTransferApi.cs ----
        ConfigTransferApi.Map(v1, m);
        VhostApi.Map(v1, m);
        HostDevicesApi.Map(v1, m);
        FileSystemsApi.Map(v1, m);
        QosApi.Map(v1, m);
    }

    /// <summary>
    /// A body that is not JSON, or names a field the request does not have, is refused as problem+json
    /// whose detail says where (the JSON path) and what, instead of an empty 400.
    /// </summary>
    public static async Task BadRequestsAsProblems(HttpContext context, RequestDelegate next)
    {
        try
        {
            await next(context).ConfigureAwait(false);
        }
        catch (BadHttpRequestException ex) when (!context.Response.HasStarted)
        {
            string detail = ex.InnerException is { } inner ? $"{ex.Message.TrimEnd('.')}: {inner.Message}" : ex.Message;
            await Results.Problem(detail: detail, statusCode: ex.StatusCode, title: "invalid request").ExecuteAsync(context).ConfigureAwait(false);
        }
    }

    /// <summary>Documents the problem+json answers of a change: 400 invalid, 404 unknown, 409 conflict.</summary>
    private static RouteHandlerBuilder Refusals(this RouteHandlerBuilder route) =>
        route.ProducesProblem(400).ProducesProblem(404).ProducesProblem(409);

    internal static async Task<IResult> Run(Func<Task<IResult>> action)
    {
        try
        {
            return await action().ConfigureAwait(false);
        }
        catch (ManagementException ex)
        {
            return Results.Problem(detail: ex.Message, statusCode: ex.Status, title: ex.Title);
        }
    }
}
