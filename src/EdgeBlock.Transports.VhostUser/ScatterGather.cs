namespace EdgeBlock.Transports.VhostUser;

/// <summary>
/// Copies between a flat span and a chain's translated segments, read as one byte string. The
/// device sees one buffer per request; the guest may split it over any number of descriptors.
/// </summary>
internal static unsafe class ScatterGather
{
    /// <summary>Copies destination.Length bytes starting at byte offset of the segments' concatenation.</summary>
    public static bool CopyFrom(Segment[] segments, int count, long offset, Span<byte> destination)
    {
        int done = 0;
        for (int i = 0; i < count && done < destination.Length; i++)
        {
            if (!Overlap(segments[i], ref offset, destination.Length - done, out byte* p, out int n))
            {
                continue;
            }
            new ReadOnlySpan<byte>(p, n).CopyTo(destination[done..]);
            done += n;
        }
        return done == destination.Length;
    }

    /// <summary>Copies source to byte offset of the segments' concatenation.</summary>
    public static bool CopyTo(Segment[] segments, int count, long offset, ReadOnlySpan<byte> source)
    {
        int done = 0;
        for (int i = 0; i < count && done < source.Length; i++)
        {
            if (!Overlap(segments[i], ref offset, source.Length - done, out byte* p, out int n))
            {
                continue;
            }
            source.Slice(done, n).CopyTo(new Span<byte>(p, n));
            done += n;
        }
        return done == source.Length;
    }

    /// <summary>
    /// The host address of length bytes at offset when they lie in one segment: the device then
    /// works on guest memory in place instead of through a bounce buffer.
    /// </summary>
    public static bool TryContiguous(Segment[] segments, int count, long offset, int length, out nint pointer)
    {
        for (int i = 0; i < count; i++)
        {
            Segment s = segments[i];
            if (offset >= s.Length)
            {
                offset -= s.Length;
                continue;
            }
            if (s.Length - offset >= length)
            {
                pointer = s.Pointer + (nint)offset;
                return true;
            }
            break;
        }
        pointer = 0;
        return false;
    }

    /// <summary>
    /// The part of segment s a copy uses, given the bytes still to skip (offset, consumed here)
    /// and still wanted; false when the whole segment lies before the offset.
    /// </summary>
    private static bool Overlap(Segment s, ref long offset, int wanted, out byte* pointer, out int length)
    {
        if (offset >= s.Length)
        {
            offset -= s.Length;
            pointer = null;
            length = 0;
            return false;
        }
        pointer = (byte*)s.Pointer + offset;
        length = (int)Math.Min(s.Length - offset, wanted);
        offset = 0;
        return true;
    }
}
