using EdgeBlock.Api.Pools;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace EdgeBlock.Daemon.Management;

/// <summary>
/// /v1 QoS of volumes and groups (desired state, so through the management service). A field left out stays; "0" or
/// "none" removes it; DELETE removes all of it.
/// <code>
/// PUT    /v1/pools/{pool}/volumes/{name}/qos {iops?, bandwidth?, burst_iops?, burst_bandwidth?, weight?}   DELETE (the same)
/// PUT    /v1/pools/{pool}/groups/{group}/qos {iops?, bandwidth?, burst_iops?, burst_bandwidth?}           DELETE (the same)
/// </code>
/// </summary>
public static class QosApi
{
    private static readonly SetVolumeQosRequest ClearVolume = new("none", "none", "none", "none", "none");
    private static readonly SetGroupQosRequest ClearGroup = new("none", "none", "none", "none");

    public static void Map(RouteGroupBuilder v1, ManagementService m)
    {
        v1.MapPut("/pools/{pool}/volumes/{name}/qos", (string pool, string name, SetVolumeQosRequest body) =>
            ManagementApi.Run(async () => Results.Ok(await m.SetVolumeQosAsync(pool, name, body)))).Produces<QosInfo>().Refusals();
        v1.MapDelete("/pools/{pool}/volumes/{name}/qos", (string pool, string name) =>
            ManagementApi.Run(async () => Results.Ok(await m.SetVolumeQosAsync(pool, name, ClearVolume)))).Produces<QosInfo>().Refusals();
        v1.MapPut("/pools/{pool}/groups/{group}/qos", (string pool, string group, SetGroupQosRequest body) =>
            ManagementApi.Run(async () => Results.Ok(await m.SetGroupQosAsync(pool, group, body)))).Produces<QosInfo>().Refusals();
        v1.MapDelete("/pools/{pool}/groups/{group}/qos", (string pool, string group) =>
            ManagementApi.Run(async () => Results.Ok(await m.SetGroupQosAsync(pool, group, ClearGroup)))).Produces<QosInfo>().Refusals();
    }

    private static RouteHandlerBuilder Refusals(this RouteHandlerBuilder route) =>
        route.ProducesProblem(400).ProducesProblem(404).ProducesProblem(409);
}
