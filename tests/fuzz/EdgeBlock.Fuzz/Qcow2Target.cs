using EdgeBlock.Images;

namespace EdgeBlock.Fuzz;

/// <summary>
/// The image reader behind `image info` and `image import`: the input is a qcow2 (or raw) file, written to a
/// scratch file and opened through <see cref="ImageFile.Open"/> (header, extensions, L1 table), then its extents
/// listed and up to 4 MiB of its data read (L2 tables, zero and compressed clusters, subclusters). A refusal is an
/// <see cref="ImageException"/>; any other exception is a finding (`image import` would fail with an unnamed error),
/// and so is an allocation sized by a field (the resident-set bound of <see cref="FuzzTargets.RunOne"/>).
/// </summary>
internal sealed class Qcow2Target
{
    private const long ReadBudget = 4 << 20;
    private readonly string _path = Path.Combine(Path.GetTempPath(), $"edgeblock-fuzz-qcow2-{Environment.ProcessId}.img");
    private readonly byte[] _buffer = new byte[1 << 20];

    public void Run(ReadOnlySpan<byte> input)
    {
        using (var file = File.Open(_path, FileMode.Create, FileAccess.Write)) file.Write(input);
        try
        {
            using ImageReader image = ImageFile.Open(_path);
            long budget = ReadBudget;
            foreach ((long start, long end) in ImageCopy.DataRanges(image))
                for (long offset = start; offset < end && budget > 0; offset += _buffer.Length)
                {
                    int n = (int)Math.Min(_buffer.Length, end - offset);
                    image.Read(offset, _buffer.AsSpan(0, n));
                    budget -= n;
                }
            ImageInfo.Of(image);
        }
        catch (ImageException)
        {
            // refused, naming the problem: expected
        }
    }
}
