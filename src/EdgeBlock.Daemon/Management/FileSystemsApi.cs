using EdgeBlock.Api;
using EdgeBlock.Daemon.Pools;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;

namespace EdgeBlock.Daemon.Management;

/// <summary>/v1/host/filesystems: file systems of this host on thin volumes (a host device with a mount).</summary>
public static class FileSystemsApi
{
    public static void Map(RouteGroupBuilder v1, ManagementService m)
    {
        v1.MapGet("/host/filesystems", () => Results.Ok(m.FileSystems())).Produces<List<HostDeviceInfo>>();
        // PoolsApi.Run: making the volume can be refused by the pool (space, quota, name), as `volume create`.
        v1.MapPost("/host/filesystems", (CreateFileSystemRequest body) => PoolsApi.Run(async () =>
        {
            var fs = await m.CreateFileSystemAsync(body);
            return Results.Created($"/v1/host/filesystems?volume={Uri.EscapeDataString(fs.Volume)}", fs);
        })).Produces<HostDeviceInfo>(201).Refusals();
        v1.MapDelete("/host/filesystems", (string? volume, [FromQuery(Name = "keep_volume")] bool? keepVolume) => PoolsApi.Run(async () =>
        {
            await m.RemoveFileSystemAsync(volume ?? "", keepVolume ?? false);
            return Results.NoContent();
        })).Produces(204).Refusals();
    }
}
