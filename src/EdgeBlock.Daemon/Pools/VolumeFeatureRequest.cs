using System.Globalization;
using System.Text;
using EdgeBlock.Volumes;

namespace EdgeBlock.Daemon.Pools;

/// <summary>
/// The data-service fields of a volume create request (compress, checksum) as the storage layer's
/// <see cref="VolumeFeatures"/>. A bad value is refused as <see cref="VolumeError.Invalid"/> (HTTP 400) naming the
/// field and the value; the value is shown bounded and with control characters escaped, since the request may be
/// hostile and the message goes to logs and terminals.
/// </summary>
public static class VolumeFeatureRequest
{
    /// <summary>Longer than any spelling (zstd:19 and some blanks): beyond it the value is refused without parsing.</summary>
    public const int MaxCompressLength = 32;

    public static VolumeFeatures Parse(string? compress, bool checksum, string what)
    {
        if (compress is { Length: > MaxCompressLength })
            throw Invalid($"{what}: compress {Shown(compress)} ({compress.Length} characters) is not off, lz4 or zstd[:LEVEL]");
        foreach (char c in compress ?? "")
        {
            if (char.IsControl(c))
                throw Invalid($"{what}: compress {Shown(compress!)} contains the control character U+{(int)c:X4}; use off, lz4 or zstd[:LEVEL]");
        }
        if (!VolumeFeatures.TryParseCompression(compress, out VolumeCompression compression, out int level, out string error))
        {
            // The storage layer says "compression 'VALUE' ..."; the request's field is "compress" (and the flag --compress).
            const string StorageWord = "compression ";
            throw Invalid(error.StartsWith(StorageWord, StringComparison.Ordinal) ? $"{what}: compress {error[StorageWord.Length..]}" : $"{what}: compress: {error}");
        }
        return new VolumeFeatures(compression, level, checksum);
    }

    /// <summary>Longest key file path or key command accepted (PATH_MAX; a command is a line, not a script).</summary>
    public const int MaxKeySourceLength = 4096;

    /// <summary>The key source of an encrypted volume (null when none is given); the storage layer checks the file or runs the command.</summary>
    public static VolumeKeySource? Key(string? keyFile, string? keyCommand, string what)
    {
        keyFile = string.IsNullOrEmpty(keyFile) ? null : keyFile;
        keyCommand = string.IsNullOrEmpty(keyCommand) ? null : keyCommand;
        if (keyFile is not null && keyCommand is not null) throw Invalid($"{what}: give one key source, key_file or key_command, not both");
        foreach ((string field, string? value) in new[] { ("key_file", keyFile), ("key_command", keyCommand) })
        {
            if (value is null) continue;
            if (value.Length > MaxKeySourceLength) throw Invalid($"{what}: {field} is {value.Length} characters long; at most {MaxKeySourceLength}");
            foreach (char c in value)
            {
                if (char.IsControl(c)) throw Invalid($"{what}: {field} {Shown(value, 64)} contains the control character U+{(int)c:X4}");
            }
        }
        return keyFile is null && keyCommand is null ? null : new VolumeKeySource(keyFile, keyCommand);
    }

    /// <summary>'value' quoted, control characters as \uXXXX, cut after limit characters.</summary>
    private static string Shown(string value, int limit = MaxCompressLength)
    {
        var text = new StringBuilder("'");
        foreach (char c in value.AsSpan(0, Math.Min(value.Length, limit)))
        {
            if (char.IsControl(c)) text.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:X4}");
            else text.Append(c);
        }
        text.Append(value.Length > limit ? "'..." : "'");
        return text.ToString();
    }

    private static VolumeException Invalid(string message) => new(VolumeError.Invalid, message);
}
