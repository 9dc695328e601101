namespace EdgeBlock.Api;

/// <summary>
/// What every refusal of the API answers (RFC 7807 problem details, application/problem+json, HTTP 4xx/5xx):
/// <see cref="Title"/> names the kind of refusal, <see cref="Detail"/> says what was wrong and what to do.
/// </summary>
public sealed record Problem(string? Type = null, string? Title = null, int? Status = null, string? Detail = null);
