using System.Text.Json;
using System.Text.Json.Serialization;

namespace EdgeBlock.Api;

/// <summary>JSON settings of the API (and of the daemon's config file): snake_case, unknown fields refused (a typo is an error, not a silent default).</summary>
public static class ApiJson
{
    public static readonly JsonSerializerOptions Options = Configure(new JsonSerializerOptions());

    public static JsonSerializerOptions Configure(JsonSerializerOptions o)
    {
        o.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
        o.DictionaryKeyPolicy = JsonNamingPolicy.SnakeCaseLower;
        o.WriteIndented = true;
        o.UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow;
        o.ReadCommentHandling = JsonCommentHandling.Skip;
        o.AllowTrailingCommas = true;
        o.DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull;
        // ASP.NET's web defaults read numbers from strings ("nsid": "7"): a number is a JSON number here.
        o.NumberHandling = JsonNumberHandling.Strict;
        return o;
    }
}
