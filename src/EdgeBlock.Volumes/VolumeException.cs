namespace EdgeBlock.Volumes;

/// <summary>Why a pool or volume operation was refused. The message names the object and what to do.</summary>
public sealed class VolumeException : Exception
{
    public VolumeException(VolumeError error, string message, Exception? inner = null) : base(message, inner) => Error = error;

    public VolumeError Error { get; }
}

public enum VolumeError
{
    /// <summary>Bad argument: name, size, path.</summary>
    Invalid,
    NotFound,
    AlreadyExists,
    /// <summary>Not enough space, reservation or quota for the request.</summary>
    NoSpace,
    /// <summary>The object is in use (exported, has dependants).</summary>
    Busy,
    /// <summary>A drive or the metadata failed.</summary>
    Io,
}
