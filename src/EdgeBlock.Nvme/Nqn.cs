namespace EdgeBlock.Nvme;

/// <summary>NVMe Qualified Names (base spec 4.5).</summary>
public static class Nqn
{
    public const int MaxBytes = 223;
    public const string Discovery = "nqn.2014-08.org.nvmexpress.discovery";

    /// <summary>Checks the spec's forms: nqn.yyyy-mm.reverse.domain[:...] or nqn.2014-08.org.nvmexpress:uuid:UUID.</summary>
    public static bool IsValid(string nqn, out string reason)
    {
        reason = "";
        if (System.Text.Encoding.UTF8.GetByteCount(nqn) > MaxBytes) { reason = $"longer than {MaxBytes} bytes"; return false; }
        if (nqn == Discovery) return true;
        // Names end up in URLs, logs, terminals and (kernel engine) configfs paths, none of which can carry these.
        foreach (char c in nqn)
        {
            if (char.IsControl(c)) { reason = $"contains the control character U+{(int)c:X4}"; return false; }
            if (c == '/') { reason = "contains '/', which no URL path segment or configfs name can hold"; return false; }
        }
        if (!nqn.StartsWith("nqn.", StringComparison.Ordinal) || nqn.Length < 12) { reason = "must start with 'nqn.yyyy-mm.'"; return false; }
        ReadOnlySpan<char> date = nqn.AsSpan(4, 7);
        if (!(char.IsAsciiDigit(date[0]) && char.IsAsciiDigit(date[1]) && char.IsAsciiDigit(date[2]) && char.IsAsciiDigit(date[3])
              && date[4] == '-' && char.IsAsciiDigit(date[5]) && char.IsAsciiDigit(date[6]) && nqn.Length > 12 && nqn[11] == '.'))
        {
            reason = "must start with 'nqn.yyyy-mm.' followed by a reverse domain name"; return false;
        }
        int month = (date[5] - '0') * 10 + (date[6] - '0');
        if (month is < 1 or > 12) { reason = $"month {month:D2} is not 01..12"; return false; }
        return true;
    }
}
