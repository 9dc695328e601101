namespace EdgeBlock.Images;

/// <summary>What a range of an image's virtual disk holds (qemu's block status, one layer at a time).</summary>
public enum ExtentKind
{
    /// <summary>This layer stores data for the range (it may still be zeros: a reader checks).</summary>
    Data,
    /// <summary>The range reads as zeros, whatever a backing image holds.</summary>
    Zero,
    /// <summary>This layer says nothing about the range: it comes from the backing image, or reads as zeros without one.</summary>
    Unallocated,
}

/// <summary>A run of the virtual disk, [Offset, Offset + Length), all of one kind.</summary>
public readonly record struct ImageExtent(long Offset, long Length, ExtentKind Kind)
{
    public long End => Offset + Length;
}
