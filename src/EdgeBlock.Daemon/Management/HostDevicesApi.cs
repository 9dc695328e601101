using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace EdgeBlock.Daemon.Management;

/// <summary>/v1/host/devices: volumes attached to this host as block devices (ublk).</summary>
public static class HostDevicesApi
{
    public static void Map(RouteGroupBuilder v1, ManagementService m)
    {
        v1.MapGet("/host/devices", () => ManagementApi.Run(() => Task.FromResult(Results.Ok(m.HostDevices()))))
            .Produces<List<HostDeviceInfo>>();
        v1.MapPost("/host/devices", (AttachHostDeviceRequest body) => ManagementApi.Run(async () =>
        {
            var device = await m.AttachHostDeviceAsync(body);
            return Results.Created($"/v1/host/devices?volume={Uri.EscapeDataString(device.Volume)}", device);
        })).Produces<HostDeviceInfo>(201).ProducesProblem(400).ProducesProblem(404).ProducesProblem(409);
        v1.MapDelete("/host/devices", (string? volume, string? device, bool? force) => ManagementApi.Run(async () =>
        {
            if (string.IsNullOrEmpty(volume) == string.IsNullOrEmpty(device))
                throw ManagementException.Invalid("give the volume or the device: DELETE /v1/host/devices?volume=POOL/NAME or ?device=/dev/ublkbN");
            await m.DetachHostDeviceAsync(volume ?? device!, force ?? false);
            return Results.NoContent();
        })).Produces(204).ProducesProblem(400).ProducesProblem(404).ProducesProblem(409);
    }
}
