using System.Text.Json;

namespace EdgeBlock.Api;

// `edgeblock config import|export|reload`: a whole configuration in (nvmetcli save JSON or EdgeBlock's own
// desired state) applied as one change, and the desired state out in either format.

/// <summary>POST /v1/config/import. <see cref="Format"/>: auto (default), nvmetcli or edgeblock. <see cref="Force"/>: block devices with a signature are exported anyway.</summary>
public sealed record ConfigImportRequest(JsonElement Document, string? Format = null, bool Replace = false, bool DryRun = false, bool Strict = false,
    bool Force = false);

/// <summary>What an import changed (or, when not <see cref="Applied"/>, would change), and what it could not carry over.</summary>
public sealed record ConfigImportResult(string Format, bool Applied, IReadOnlyList<string> Changes, IReadOnlyList<string> Warnings);

/// <summary>GET /v1/config: the desired state as a document of <see cref="Format"/>, and what it had to leave out.</summary>
public sealed record ConfigExportResult(string Format, JsonElement Document, IReadOnlyList<string> Warnings);
