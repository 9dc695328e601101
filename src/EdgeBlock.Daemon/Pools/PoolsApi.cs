using EdgeBlock.Api.Pools;
using EdgeBlock.Daemon.Management;
using EdgeBlock.Volumes;
using GroupInfo = EdgeBlock.Api.Pools.GroupInfo;
using PoolCheckReport = EdgeBlock.Api.Pools.PoolCheckReport;
using VolumeInfo = EdgeBlock.Api.Pools.VolumeInfo;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace EdgeBlock.Daemon.Pools;

/// <summary>
/// /v1 pools, volumes and groups (groups are per pool). Refusals are RFC 7807 problem+json:
/// 400 invalid, 404 unknown, 409 exists or busy (exported), 507 not enough space (reservation,
/// quota), 500 a drive or the metadata failed.
/// <code>
/// GET    /v1/pools                                   POST /v1/pools {name, drives: ["PATH[:SIZE]"], extent_size?, force?}
/// GET    /v1/pools/{pool}                            POST /v1/pools/{pool}/drives {drive}
/// GET    /v1/pools/{pool}/check
/// POST   /v1/pools/{pool}/scrub {resume?, io_share?} (202)   GET /v1/pools/{pool}/scrub   DELETE /v1/pools/{pool}/scrub (409: none running)
/// GET    /v1/volumes                                 (every open pool)
/// GET    /v1/pools/{pool}/volumes                    POST /v1/pools/{pool}/volumes {name, size, reserve?, group?, compress?, checksum?}
/// GET    /v1/pools/{pool}/volumes/{name}             DELETE /v1/pools/{pool}/volumes/{name}
/// POST   /v1/pools/{pool}/volumes/{name}/resize {size, force?}
/// POST   /v1/pools/{pool}/volumes/{name}/snapshots {name}
/// POST   /v1/pools/{pool}/volumes/{name@snap}/clones {name, reserve?, group?}
/// POST   /v1/pools/{pool}/volumes/{name}/adopt {image}  (Ceph pools: an existing RBD image becomes the volume)
/// GET    /v1/pools/{pool}/groups                     PUT /v1/pools/{pool}/groups/{group} {quota}
/// </code>
/// QoS of volumes and groups is desired state: Management/QosApi.cs.
/// Image imports and exports: <see cref="ImagesApi"/>.
/// </summary>
public static class PoolsApi
{
    public static void Map(IEndpointRouteBuilder app, PoolManager pools)
    {
        var v1 = app.MapGroup("/v1");

        v1.MapGet("/pools", () => Results.Ok(pools.List())).Produces<List<PoolSummary>>();
        v1.MapPost("/pools", (CreatePoolRequest body) =>
            Run(async () => Results.Created($"/v1/pools/{Uri.EscapeDataString(body.Name ?? "")}", await pools.CreateAsync(body)))).Produces<PoolSummary>(201).Refusals();
        v1.MapGet("/pools/{pool}", (string pool) => Run(() => Task.FromResult(Results.Ok(pools.Show(pool))))).Produces<PoolSummary>().Refusals();
        v1.MapPost("/pools/{pool}/drives", (string pool, AddDriveRequest body) =>
            Run(async () => Results.Ok(await pools.AddDriveAsync(pool, body)))).Produces<PoolSummary>().Refusals();
        v1.MapGet("/pools/{pool}/check", (string pool) => Run(() => Task.FromResult(Results.Ok(pools.Check(pool).ToContract())))).Produces<PoolCheckReport>().Refusals();

        // A scrub is a background job: the start answers 202 with its status; GET follows it, DELETE cancels it.
        v1.MapPost("/pools/{pool}/scrub", (string pool, ScrubRequest? body) =>
            Run(async () => Results.Accepted($"/v1/pools/{Uri.EscapeDataString(pool)}/scrub", await pools.Scrubs.StartAsync(pool, body)))).Produces<ScrubStatus>(202).Refusals();
        v1.MapGet("/pools/{pool}/scrub", (string pool) => Run(() => Task.FromResult(Results.Ok(pools.Scrubs.Status(pool))))).Produces<ScrubStatus>().Refusals();
        v1.MapDelete("/pools/{pool}/scrub", (string pool) => Run(async () => Results.Ok(await pools.Scrubs.CancelAsync(pool)))).Produces<ScrubStatus>().Refusals();

        v1.MapGet("/volumes", () => Results.Ok(pools.ListVolumes(null).ToContract(pools.Qos))).Produces<List<VolumeInfo>>();
        v1.MapGet("/pools/{pool}/volumes", (string pool) => Run(() => Task.FromResult(Results.Ok(pools.ListVolumes(pool).ToContract(pools.Qos))))).Produces<List<VolumeInfo>>().Refusals();
        v1.MapPost("/pools/{pool}/volumes", (string pool, CreateVolumeRequest body) =>
            Run(async () => Created(await pools.CreateVolumeAsync(pool, body)))).Produces<VolumeInfo>(201).Refusals();
        v1.MapGet("/pools/{pool}/volumes/{name}", (string pool, string name) =>
            Run(() => Task.FromResult(Results.Ok(pools.GetVolume(pool, name).ToContract(pools.Qos))))).Produces<VolumeInfo>().Refusals();
        v1.MapDelete("/pools/{pool}/volumes/{name}", (string pool, string name) =>
            Run(async () => { await pools.DeleteVolumeAsync(pool, name); return Results.NoContent(); })).Produces(204).Refusals();
        v1.MapPost("/pools/{pool}/volumes/{name}/resize", (string pool, string name, ResizeVolumeRequest body) =>
            Run(async () => Results.Ok((await pools.ResizeVolumeAsync(pool, name, body)).ToContract()))).Produces<VolumeInfo>().Refusals();
        v1.MapPost("/pools/{pool}/volumes/{name}/snapshots", (string pool, string name, SnapshotRequest body) =>
            Run(async () => Created(await pools.SnapshotAsync(pool, name, body)))).Produces<VolumeInfo>(201).Refusals();
        v1.MapPost("/pools/{pool}/volumes/{name}/clones", (string pool, string name, CloneRequest body) =>
            Run(async () => Created(await pools.CloneAsync(pool, name, body)))).Produces<VolumeInfo>(201).Refusals();

        v1.MapPost("/pools/{pool}/volumes/{name}/adopt", (string pool, string name, AdoptVolumeRequest body) =>
            Run(async () => Created(await pools.AdoptVolumeAsync(pool, name, body)))).Produces<VolumeInfo>(201).Refusals();

        v1.MapGet("/pools/{pool}/groups", (string pool) => Run(() => Task.FromResult(Results.Ok(pools.ListGroups(pool).ToContract(pool, pools.Qos))))).Produces<List<GroupInfo>>().Refusals();
        v1.MapPut("/pools/{pool}/groups/{group}", (string pool, string group, SetGroupQuotaRequest body) =>
            Run(async () => Results.Ok((await pools.SetGroupQuotaAsync(pool, group, body)).ToContract() with { Qos = pools.Qos.DescribeGroup(pool, group) }))).Produces<GroupInfo>().Refusals();

        ImagesApi.Map(v1, pools.Images);
    }

    internal static IResult Created(EdgeBlock.Volumes.VolumeInfo v) =>
        Results.Created($"/v1/pools/{Uri.EscapeDataString(v.Pool)}/volumes/{Uri.EscapeDataString(v.Name)}", v.ToContract());

    internal static RouteHandlerBuilder Refusals(this RouteHandlerBuilder route) =>
        route.ProducesProblem(400).ProducesProblem(404).ProducesProblem(409).ProducesProblem(507);

    internal static async Task<IResult> Run(Func<Task<IResult>> action)
    {
        try
        {
            return await action().ConfigureAwait(false);
        }
        catch (VolumeException ex)
        {
            var refusal = PoolManager.Refusal(ex);
            return Results.Problem(detail: refusal.Message, statusCode: refusal.Status, title: refusal.Title);
        }
        catch (ManagementException ex)
        {
            return Results.Problem(detail: ex.Message, statusCode: ex.Status, title: ex.Title);
        }
    }
}
