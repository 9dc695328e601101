namespace EdgeBlock.Images;

/// <summary>
/// What opening an image may touch. A qcow2 image names its backing file; that name comes from the file, so it is
/// trusted no further than these options allow: the resolved path (symbolic links followed) must lie under one of
/// <see cref="AllowedDirectories"/>, or, when none are given, under the directory of the image the caller named.
/// </summary>
public sealed record ImageOpenOptions
{
    /// <summary>Backing chains longer than this are refused (qemu has no limit; a loop of distinct names would otherwise run forever).</summary>
    public const int DefaultMaxBackingDepth = 16;

    /// <summary>Directories backing files may be in; empty: the named image's own directory (and below).</summary>
    public IReadOnlyList<string> AllowedDirectories { get; init; } = [];

    /// <summary>How many backing images may lie below the named one.</summary>
    public int MaxBackingDepth { get; init; } = DefaultMaxBackingDepth;

    /// <summary>Forces the named image's format instead of probing it.</summary>
    public ImageFormat? Format { get; init; }

    public static ImageOpenOptions Default { get; } = new();
}
