using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace EdgeBlock.Images;

/// <summary>
/// Opens an image and its backing chain. A backing file name comes from the image, so it is resolved against the
/// image's own directory, symbolic links followed, and refused unless the result lies inside the directories the
/// caller allowed; a chain that revisits a file or grows deeper than allowed is refused too.
/// </summary>
public static class ImageFile
{
    /// <summary>Opens <paramref name="path"/> (format probed unless the options force one) with its backing chain.</summary>
    public static ImageReader Open(string path, ImageOpenOptions? options = null)
    {
        options ??= ImageOpenOptions.Default;
        string full = RealPath(System.IO.Path.GetFullPath(path));
        IReadOnlyList<string> allowed = options.AllowedDirectories.Count > 0
            ? options.AllowedDirectories.Select(d => RealPath(System.IO.Path.GetFullPath(d))).ToList()
            : [System.IO.Path.GetDirectoryName(full)!];
        return OpenLayer(full, options.Format, options, allowed, [], 0);
    }

    /// <summary>Probes a file's format from its first bytes: the qcow2 magic, else raw.</summary>
    public static ImageFormat Probe(SafeFileHandle file)
    {
        Span<byte> magic = stackalloc byte[4];
        return RandomAccess.Read(file, magic, 0) == 4 && BinaryPrimitives.ReadUInt32BigEndian(magic) == Qcow2Header.Magic
            ? ImageFormat.Qcow2 : ImageFormat.Raw;
    }

    private static ImageReader OpenLayer(string path, ImageFormat? format, ImageOpenOptions options, IReadOnlyList<string> allowed, HashSet<string> chain, int depth)
    {
        if (!chain.Add(path)) throw new ImageException($"{path}: the backing chain loops back to this file ({string.Join(" -> ", chain)} -> {path})");
        SafeFileHandle file;
        try
        {
            file = System.IO.File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ImageException($"{path}: cannot open the image: {e.Message}", e);
        }
        try
        {
            long length = RandomAccess.GetLength(file);
            ImageFormat actual = format ?? Probe(file);
            if (actual == ImageFormat.Raw) return new RawReader(path, file, length);
            var reader = new Qcow2Reader(path, file, length, Qcow2Header.Read(path, file, length));
            if (reader.BackingFileName is { } name)
                reader.Backing = OpenBacking(reader, name, options, allowed, chain, depth + 1);
            return reader;
        }
        catch
        {
            file.Dispose(); // and the layers below, if any opened, with their own readers' failure
            throw;
        }
    }

    private static ImageReader OpenBacking(Qcow2Reader image, string name, ImageOpenOptions options, IReadOnlyList<string> allowed, HashSet<string> chain, int depth)
    {
        if (depth > options.MaxBackingDepth)
            throw new ImageException($"{image.Path}: the backing chain is deeper than {options.MaxBackingDepth} images");
        if (name.Contains("://", StringComparison.Ordinal) || name.StartsWith("json:", StringComparison.Ordinal))
            throw new ImageException($"{image.Path}: backing file '{name}' is not a file name (protocols and json: names are not supported)");
        string joined = System.IO.Path.GetFullPath(name, System.IO.Path.GetDirectoryName(image.Path)!);
        string resolved = RealPath(joined);
        if (!allowed.Any(dir => IsUnder(resolved, dir)))
            throw new ImageException($"{image.Path}: backing file '{name}' resolves to {resolved}, outside the allowed directories ({string.Join(", ", allowed)})");
        ImageFormat? format = image.BackingFormat switch
        {
            null => null,
            "qcow2" => ImageFormat.Qcow2,
            "raw" => ImageFormat.Raw,
            var other => throw new ImageException($"{image.Path}: backing file format '{other}' is not supported (qcow2 and raw are)"),
        };
        return OpenLayer(resolved, format, options, allowed, chain, depth);
    }

    private static bool IsUnder(string path, string directory)
    {
        string dir = directory.EndsWith('/') ? directory : directory + "/";
        return path.StartsWith(dir, StringComparison.Ordinal);
    }

    /// <summary>The path with every symbolic link resolved (a missing file keeps its name: opening it then fails).</summary>
    private static string RealPath(string path)
    {
        try
        {
            FileSystemInfo? target = System.IO.File.Exists(path) || Directory.Exists(path)
                ? new FileInfo(path).ResolveLinkTarget(returnFinalTarget: true) : null;
            string resolved = target?.FullName ?? path;
            string? parent = System.IO.Path.GetDirectoryName(resolved);
            // Links in the directories above count too: resolve the parent the same way.
            return parent is null || parent == resolved ? resolved : System.IO.Path.Join(RealDirectory(parent), System.IO.Path.GetFileName(resolved));
        }
        catch (IOException)
        {
            return path;
        }
    }

    private static string RealDirectory(string dir)
    {
        string? parent = System.IO.Path.GetDirectoryName(dir);
        string real = parent is null ? dir : System.IO.Path.Join(RealDirectory(parent), System.IO.Path.GetFileName(dir));
        FileSystemInfo? target = Directory.Exists(real) ? new DirectoryInfo(real).ResolveLinkTarget(returnFinalTarget: true) : null;
        return target?.FullName ?? real;
    }
}
