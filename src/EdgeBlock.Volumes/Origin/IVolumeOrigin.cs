using EdgeBlock.Storage;

namespace EdgeBlock.Volumes;

/// <summary>
/// A read-only source a volume starts from (instant boot of a VM image): blocks the volume has not written, discarded
/// or copied yet read from it. The pool knows nothing of its format; the daemon adapts an image reader to it. Reads
/// may come from guest I/O and the background copy at once, so an implementation must allow concurrent calls.
/// </summary>
public interface IVolumeOrigin : IDisposable
{
    /// <summary>Bytes the origin holds; reads past it are zeroes.</summary>
    long Length { get; }

    /// <summary>Whether the bytes from offset hold data (else they read as zeroes), for one run of at most maxLength (at least one byte).</summary>
    (bool Data, long Length) Extent(long offset, long maxLength);

    /// <summary>Reads [offset, offset + destination.Length); bytes past <see cref="Length"/> read as zeroes. Failures are returned, not thrown.</summary>
    ValueTask<BlockStatus> ReadAsync(long offset, Memory<byte> destination);

    /// <summary>What changed in the source since it was opened against its record (null: nothing): checked before the volume lets go of it.</summary>
    string? CheckUnchanged();
}

/// <summary>
/// What the pool keeps of a volume's origin: where it is, an identity the adapter computes (so that a file changed
/// underneath is refused) and its length. Saved with the pool's metadata until the copy is done.
/// </summary>
public sealed record VolumeOriginRecord(string Path, string Identity, long LengthBytes, DateTimeOffset Attached);

/// <summary>A volume's origin as `volume show` reports it: bytes resolved (copied, written or discarded) of the total.</summary>
public sealed record OriginCopyInfo(string Path, long BytesTotal, long BytesCopied, bool Copying, string? Problem);

/// <summary>Progress of an origin copy.</summary>
public readonly record struct OriginCopyProgress(long BytesCopied, long BytesTotal, long BytesWritten);
