using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace EdgeBlock.Daemon;

/// <summary>
/// `serve --metrics ADDRESS:PORT`: GET /metrics on a TCP listener of the daemon's one HTTP stack (Kestrel, which
/// also serves the management API on its Unix socket). That listener answers /metrics and nothing else: the
/// management API is never reachable over TCP, whatever the address.
/// </summary>
internal static class MetricsEndpoint
{
    /// <summary>Adds the TCP listener. 0.0.0.0 means every address, IPv6 included, as it did with HttpListener's "+".</summary>
    public static void Listen(KestrelServerOptions kestrel, IPEndPoint endpoint)
    {
        if (endpoint.Address.Equals(IPAddress.Any)) kestrel.ListenAnyIP(endpoint.Port);
        else kestrel.Listen(endpoint);
    }

    /// <summary>
    /// First in the pipeline: a request that came in over TCP is the metrics listener's, answered here (/metrics, or 404)
    /// and never passed on to the API's endpoints. Requests on the API's Unix socket go on.
    /// </summary>
    public static void Map(WebApplication app, Func<DaemonMetrics?> metrics)
    {
        app.Use(async (context, next) =>
        {
            if (context.Connection.LocalIpAddress is null)
            {
                await next(context).ConfigureAwait(false);
                return;
            }
            await ServeAsync(context, metrics()).ConfigureAwait(false);
        });
    }

    private static async Task ServeAsync(HttpContext context, DaemonMetrics? metrics)
    {
        var response = context.Response;
        if (context.Request.Path.Value?.TrimEnd('/') != "/metrics")
        {
            response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }
        if (!HttpMethods.IsGet(context.Request.Method) && !HttpMethods.IsHead(context.Request.Method))
        {
            response.StatusCode = StatusCodes.Status405MethodNotAllowed;
            return;
        }
        if (metrics is null)
        {
            response.StatusCode = StatusCodes.Status503ServiceUnavailable; // still starting
            return;
        }
        response.ContentType = DaemonMetrics.ContentType;
        if (HttpMethods.IsHead(context.Request.Method)) return;
        await metrics.ExportAsync(response.Body, context.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>
    /// The metrics listener's bind failure in the words `serve` has always used, or null when the failure was not its
    /// own (Kestrel says "Failed to bind to address http://ADDRESS:PORT: ..." for each listener).
    /// </summary>
    public static InvalidOperationException? BindFailure(IOException error, IPEndPoint endpoint) =>
        error.Message.Contains($":{endpoint.Port}:", StringComparison.Ordinal) && !error.Message.Contains("unix:", StringComparison.Ordinal)
            ? new InvalidOperationException($"cannot serve metrics on {endpoint}: {error.Message}", error)
            : null;
}
