using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace EdgeBlock.Daemon.Management;

/// <summary>
/// The web layer's own refusals (no route, wrong method or content type, a limit of Kestrel's) as problem+json whose
/// detail names what was wrong and, for a limit, its value — the API's endpoints answer their own refusals.
/// </summary>
internal static class WebRefusals
{
    /// <summary>The API's Kestrel limits that differ from Kestrel's defaults.</summary>
    public static void Configure(KestrelServerLimits limits)
    {
        // A local client over the Unix socket sends its headers at once; a connection that trickles them is held
        // for this long at most (Kestrel's default, 30 s, lets a slow client hold a connection three times longer).
        limits.RequestHeadersTimeout = TimeSpan.FromSeconds(10);
    }

    /// <summary>For UseStatusCodePages: a refusal the pipeline made without a body (routing's 404/405/415, a body limit).</summary>
    public static Task WriteAsync(StatusCodeContext status)
    {
        var context = status.HttpContext;
        var limits = context.RequestServices.GetRequiredService<IOptions<KestrelServerOptions>>().Value.Limits;
        var problem = new Microsoft.AspNetCore.Mvc.ProblemDetails
        {
            Status = context.Response.StatusCode,
            Detail = PipelineDetail(context, limits),
        };
        return context.RequestServices.GetRequiredService<IProblemDetailsService>()
            .WriteAsync(new ProblemDetailsContext { HttpContext = context, ProblemDetails = problem }).AsTask();
    }

    private static string? PipelineDetail(HttpContext context, KestrelServerLimits limits)
    {
        var request = context.Request;
        return context.Response.StatusCode switch
        {
            StatusCodes.Status404NotFound => $"no endpoint answers {request.Method} {request.Path}; the API's endpoints are listed in /openapi/v1.json",
            StatusCodes.Status405MethodNotAllowed => $"{request.Method} is not allowed on {request.Path}; allowed: {context.Response.Headers.Allow}",
            StatusCodes.Status415UnsupportedMediaType =>
                $"the request body must be JSON (Content-Type: application/json), not {(string.IsNullOrEmpty(request.ContentType) ? "a body without Content-Type" : request.ContentType)}",
            StatusCodes.Status413PayloadTooLarge =>
                $"the request body is larger than the API's limit of {context.Features.Get<IHttpMaxRequestBodySizeFeature>()?.MaxRequestBodySize ?? limits.MaxRequestBodySize} bytes (MaxRequestBodySize)",
            StatusCodes.Status408RequestTimeout => limits.MinRequestBodyDataRate is { } rate
                ? $"the request body arrived slower than {rate.BytesPerSecond} bytes/s after a grace period of {rate.GracePeriod.TotalSeconds} s (MinRequestBodyDataRate)"
                : "the request body did not arrive in time",
            _ => null,
        };
    }

    /// <summary>The detail of a request Kestrel refused before the pipeline ran (request line, headers, their timeout).</summary>
    public static string ServerDetail(Microsoft.AspNetCore.Http.BadHttpRequestException error, KestrelServerLimits limits) => error.StatusCode switch
    {
        StatusCodes.Status414UriTooLong =>
            $"the request line (method, path and query) is longer than the API's limit of {limits.MaxRequestLineSize} bytes (MaxRequestLineSize)",
        StatusCodes.Status431RequestHeaderFieldsTooLarge =>
            $"{error.Message.TrimEnd('.')}: the API takes at most {limits.MaxRequestHeaderCount} header fields (MaxRequestHeaderCount) " +
            $"of {limits.MaxRequestHeadersTotalSize} bytes in all (MaxRequestHeadersTotalSize)",
        StatusCodes.Status408RequestTimeout =>
            $"the request line and headers did not arrive within {limits.RequestHeadersTimeout.TotalSeconds} s (RequestHeadersTimeout)",
        _ => $"the request is not valid HTTP/1.1: {error.Message}",
    };

    /// <summary>An RFC 7807 body, written without the pipeline (Kestrel's refusal is rewritten on the connection).</summary>
    public static byte[] ProblemJson(int status, string detail)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            json.WriteString("title", ReasonPhrases.GetReasonPhrase(status));
            json.WriteNumber("status", status);
            json.WriteString("detail", detail);
            json.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }
}
