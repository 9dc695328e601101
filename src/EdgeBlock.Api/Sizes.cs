using System.Globalization;

namespace EdgeBlock.Api;

/// <summary>Parses and prints sizes the way operators write them: 512, 64K, 1G, 8GiB, 2T.</summary>
public static class Sizes
{
    public static bool TryParse(string text, out long bytes, out string error)
    {
        bytes = 0;
        error = "";
        string s = text.Trim();
        if (s.EndsWith("iB", StringComparison.OrdinalIgnoreCase)) s = s[..^2];
        else if (s.EndsWith("B", StringComparison.OrdinalIgnoreCase) && s.Length > 1 && !char.IsDigit(s[^2])) s = s[..^1];
        int shift = 0;
        if (s.Length > 0 && char.IsLetter(s[^1]))
        {
            shift = char.ToUpperInvariant(s[^1]) switch { 'K' => 10, 'M' => 20, 'G' => 30, 'T' => 40, 'P' => 50, _ => -1 };
            s = s[..^1];
        }
        if (shift < 0 || !long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out long value))
        {
            error = $"'{text}' is not a size (examples: 512M, 8G, 1T)";
            return false;
        }
        if (value > (long.MaxValue >> shift))
        {
            error = $"'{text}' is too large";
            return false;
        }
        bytes = value << shift;
        return true;
    }

    public static string Format(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
        double v = bytes;
        int u = 0;
        while (v >= 1024 && u < units.Length - 1) { v /= 1024; u++; }
        return u == 0 ? $"{bytes} B" : $"{v.ToString("0.##", CultureInfo.InvariantCulture)} {units[u]}";
    }
}
