namespace EdgeBlock.Api.Pools;

// Image import and export: background jobs of the daemon, which opens the image file itself (so the file must be
// under the data directory or a storage root). POST /v1/pools/{pool}/images/import and .../images/export start one
// (202 with its status); GET /v1/image-jobs/{id} follows it, GET /v1/image-jobs lists them, DELETE cancels one.

/// <summary>
/// Imports a qcow2 or raw image FILE (format probed) into a new volume NAME of the pool, writing only the image's data
/// (the volume stays thin). Size: the volume's size, at least the image's virtual size (default: that size rounded up
/// to 4 KiB). Group and Reserve as for a new volume. A qcow2 backing chain may only lie in the image's directory.
/// </summary>
public sealed record ImageImportRequest(string? File, string? Name, string? Size = null, string? Group = null, string? Reserve = null);

/// <summary>
/// Exports a volume or snapshot (NAME or NAME@SNAP) to a new FILE: Format "qcow2" or "raw" (both sparse), Compress
/// "deflate" or "zstd" (qcow2 only; clusters that would not shrink stay plain). A volume in use may change while it
/// is read: export a snapshot for a consistent image.
/// </summary>
public sealed record ImageExportRequest(string? Volume, string? File, string? Format, string? Compress = null);

/// <summary>
/// Attaches a qcow2 or raw image FILE as the read-only origin of a new volume NAME (instant boot): the volume is
/// usable at once, reads of blocks not yet copied come from the image, writes go to the volume, and a background copy
/// (an image job of kind "attach", using IoShare of the drives' time: above 0, at most 1, default 0.5) moves the rest,
/// then drops the image. The daemon keeps the image's identity (size, inode, mtime, hash of its mapping metadata) and
/// refuses it once it changed. Size and Group as for an import. Answers 201 with the volume.
/// </summary>
public sealed record ImageAttachRequest(string? File, string? Name, string? Size = null, string? Group = null, double? IoShare = null);

/// <summary>
/// An import's, export's or attach copy's status. Kind: "import", "export" or "attach" (the background copy of an
/// attached volume: resumed at daemon start, not cancelled: delete the volume to abandon it); State: "running", "finished", "failed" (Failure says
/// why; a failed or cancelled import removes its volume, a failed export its file) or "cancelled". BytesTotal: the
/// bytes of data ranges to copy (an import: the image's allocated data; an export: the volume's size); BytesDone: of
/// those, examined so far; BytesWritten: non-zero data written (zero blocks are skipped). Format and Compression
/// describe the image (Compression: "deflate", "zstd" or null).
/// </summary>
public sealed record ImageJobStatus(
    string Id, string Kind, string State, string Pool, string Volume, string File, string Format, string? Compression,
    long BytesDone, long BytesTotal, long BytesWritten, double? BytesPerSecond, double? EtaSeconds,
    DateTimeOffset Started, DateTimeOffset? Ended, string? Failure)
{
    public const string Import = "import";
    public const string Export = "export";
    public const string Attach = "attach";
    public const string Running = "running";
    public const string Finished = "finished";
    public const string Failed = "failed";
    public const string Cancelled = "cancelled";
}
