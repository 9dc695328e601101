namespace EdgeBlock.Daemon.Management;

/// <summary>
/// A refused management request: the HTTP status it maps to, a short title and a detail that
/// names what was wrong and what to do. Nothing was changed when this is thrown.
/// </summary>
public sealed class ManagementException(int status, string title, string detail) : InvalidOperationException(detail)
{
    public int Status { get; } = status;
    public string Title { get; } = title;

    public static ManagementException Invalid(string detail) => new(400, "invalid request", detail);
    public static ManagementException NotFound(string detail) => new(404, "not found", detail);
    public static ManagementException Conflict(string detail) => new(409, "conflict", detail);
}
