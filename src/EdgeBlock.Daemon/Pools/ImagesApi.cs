using EdgeBlock.Api.Pools;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;

namespace EdgeBlock.Daemon.Pools;

/// <summary>
/// /v1 image imports and exports, background jobs (<see cref="ImageJobs"/>); refusals as in <see cref="PoolsApi"/>.
/// <code>
/// POST   /v1/pools/{pool}/images/import {file, name, size?, group?, reserve?}   (202)
/// POST   /v1/pools/{pool}/images/import-stream?name=N&amp;size=S[&amp;group=T&amp;reserve=R]  raw image in the body (200 when it is in)
/// POST   /v1/pools/{pool}/images/export {volume, file, format, compress?}       (202)
/// POST   /v1/pools/{pool}/images/attach {file, name, size?, group?, io_share?}   (201 with the volume; its copy is an image job)
/// GET    /v1/image-jobs      GET /v1/image-jobs/{id}[?wait=SECONDS]      DELETE /v1/image-jobs/{id} (409: not running)
/// </code>
/// </summary>
public static class ImagesApi
{
    public static void Map(RouteGroupBuilder v1, ImageJobs jobs)
    {
        v1.MapPost("/pools/{pool}/images/import", (string pool, ImageImportRequest body) =>
            PoolsApi.Run(async () => Accepted(await jobs.StartImportAsync(pool, body)))).Produces<ImageJobStatus>(202).Refusals();
        v1.MapPost("/pools/{pool}/images/export", (string pool, ImageExportRequest body) =>
            PoolsApi.Run(() => Task.FromResult(Accepted(jobs.StartExport(pool, body))))).Produces<ImageJobStatus>(202).Refusals();
        v1.MapPost("/pools/{pool}/images/attach", (string pool, ImageAttachRequest body) =>
            PoolsApi.Run(async () => PoolsApi.Created(await jobs.AttachAsync(pool, body)))).Produces<VolumeInfo>(201).Refusals();
        // A raw image in the body (`image import -`): answered once it is in; no body size limit (an image is large).
        v1.MapPost("/pools/{pool}/images/import-stream", (string pool, string? name, string? size, string? group, string? reserve, HttpContext http) =>
            PoolsApi.Run(async () =>
            {
                if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit) limit.MaxRequestBodySize = null;
                return Results.Ok(await jobs.ImportStreamAsync(pool, name, size, group, reserve, http.Request.Body, http.RequestAborted));
            })).Produces<ImageJobStatus>().Refusals();
        v1.MapGet("/image-jobs", () => Results.Ok(jobs.List())).Produces<List<ImageJobStatus>>();
        // wait: answer once the job ends or after that many seconds (at most 10), so a follower sees the end at once.
        v1.MapGet("/image-jobs/{id}", (string id, string? wait) => PoolsApi.Run(async () => Results.Ok(await jobs.StatusAsync(id, wait))))
            .Produces<ImageJobStatus>().Refusals();
        v1.MapDelete("/image-jobs/{id}", (string id) => PoolsApi.Run(async () => Results.Ok(await jobs.CancelAsync(id)))).Produces<ImageJobStatus>().Refusals();
    }

    private static IResult Accepted(ImageJobStatus status) => Results.Accepted($"/v1/image-jobs/{status.Id}", status);
}
