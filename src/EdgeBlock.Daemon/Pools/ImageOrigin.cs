using EdgeBlock.Images;
using EdgeBlock.Storage;
using EdgeBlock.Volumes;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Daemon.Pools;

/// <summary>
/// An image file as the read-only origin of an attached volume: the adapter between the Images layer (which knows
/// nothing of volumes) and the pool (which knows nothing of images). The reader keeps one cluster table and buffer, so
/// calls take a lock; reads run on the thread pool (a qcow2 read may decompress), off the transport's threads. The
/// identity (<see cref="ImageReader.Identity"/>) is taken at attach and compared with the file as it is now when the
/// pool opens the origin again and before it drops it.
/// </summary>
internal sealed class ImageOrigin : IVolumeOrigin
{
    private readonly ImageReader _reader;
    private readonly string _identity;
    private readonly ILogger _logger;
    private readonly object _gate = new();
    private int _readErrors;

    private ImageOrigin(ImageReader reader, string identity, ILogger logger)
    {
        _reader = reader;
        _identity = identity;
        _logger = logger;
    }

    /// <summary>An opened image as a new origin and the record the pool keeps of it (the reader is the origin's from now on).</summary>
    public static (IVolumeOrigin Origin, VolumeOriginRecord Record) Attach(ImageReader reader, ILogger logger)
    {
        string identity = reader.Identity();
        return (new ImageOrigin(reader, identity, logger), new VolumeOriginRecord(reader.Path, identity, reader.VirtualSize, DateTimeOffset.UtcNow));
    }

    /// <summary>Opens a recorded origin again (daemon start): refused, naming the cause, when the file is gone, unreadable or changed.</summary>
    public static IVolumeOrigin Reopen(VolumeOriginRecord record, ILogger logger)
    {
        ImageReader reader;
        try
        {
            reader = ImageFile.Open(record.Path);
        }
        catch (ImageException e)
        {
            throw new VolumeException(VolumeError.NotFound, $"{e.Message}; put the image back, or delete the volume");
        }
        try
        {
            if (Differences(record.Identity, reader.Identity()) is { } changed)
                throw new VolumeException(VolumeError.Invalid, $"the image changed since it was attached ({changed}); put the original file back, or delete the volume");
            return new ImageOrigin(reader, record.Identity, logger);
        }
        catch (ImageException e)
        {
            reader.Dispose();
            throw new VolumeException(VolumeError.Io, e.Message);
        }
        catch
        {
            reader.Dispose();
            throw;
        }
    }

    public long Length => _reader.VirtualSize;

    public (bool Data, long Length) Extent(long offset, long maxLength)
    {
        if (offset >= Length) return (false, maxLength);
        try
        {
            lock (_gate)
            {
                ImageExtent e = _reader.Status(offset, Math.Min(maxLength, Length - offset));
                return (e.Kind == ExtentKind.Data, e.Length);
            }
        }
        catch (ImageException)
        {
            return (true, Math.Min(maxLength, Length - offset)); // the read that follows reports it
        }
    }

    public ValueTask<BlockStatus> ReadAsync(long offset, Memory<byte> destination) => new(Task.Run(() => Read(offset, destination.Span)));

    private BlockStatus Read(long offset, Span<byte> destination)
    {
        int inside = (int)Math.Clamp(Length - offset, 0, destination.Length);
        try
        {
            lock (_gate) _reader.Read(offset, destination[..inside]);
            destination[inside..].Clear();
            return BlockStatus.Success;
        }
        catch (Exception e) when (e is ImageException or IOException or ObjectDisposedException)
        {
            if (Interlocked.Increment(ref _readErrors) <= 10) _logger.LogError("origin {Path}: reading {Length} bytes at {Offset} failed: {Message}", _reader.Path, destination.Length, offset, e.Message);
            return BlockStatus.ReadError;
        }
    }

    public string? CheckUnchanged()
    {
        try
        {
            using ImageReader now = ImageFile.Open(_reader.Path);
            return Differences(_identity, now.Identity());
        }
        catch (ImageException e)
        {
            return e.Message;
        }
    }

    /// <summary>The fields that differ between two identities ("size=… → size=…"), null when they are the same.</summary>
    internal static string? Differences(string before, string after)
    {
        if (before == after) return null;
        string[] b = before.Split([' ', '\n']), a = after.Split([' ', '\n']);
        if (a.Length != b.Length) return "its backing chain differs";
        return string.Join(", ", b.Zip(a).Where(p => p.First != p.Second).Select(p => $"{p.First} → {p.Second}"));
    }

    public void Dispose()
    {
        lock (_gate) _reader.Dispose();
    }
}
