using System.Buffers;
using System.Globalization;
using System.Text;

namespace EdgeBlock.Daemon.Logging;

/// <summary>
/// Escapes what a log line must not carry raw: control characters (C0, DEL, C1 — newline, CR, ESC, NUL...), line and
/// paragraph separators and the Unicode bidi controls. Names, paths and NQNs reach the log from users and from the
/// wire; raw, they forge log lines, drive the terminal (ESC sequences) or reorder what a reader sees (U+202E).
/// </summary>
public static class LogText
{
    private static readonly SearchValues<char> Unsafe = SearchValues.Create(
        Enumerable.Range(0, 0x20).Concat(Enumerable.Range(0x7F, 0x21))
            .Concat([0x061C, 0x200E, 0x200F, 0x2028, 0x2029]).Concat(Enumerable.Range(0x202A, 5)).Concat(Enumerable.Range(0x2066, 4))
            .Select(c => (char)c).ToArray());

    /// <summary>The text with each unsafe character escaped (\n, \r, \t, \xHH, \uHHHH); the same instance when it has none.</summary>
    public static string Escape(string text, bool keepNewlines = false)
    {
        int first = text.AsSpan().IndexOfAny(Unsafe);
        if (first < 0) return text;
        var escaped = new StringBuilder(text.Length + 16).Append(text, 0, first);
        foreach (char c in text.AsSpan(first))
        {
            if (!Unsafe.Contains(c) || (keepNewlines && c == '\n')) escaped.Append(c);
            else if (c == '\n') escaped.Append("\\n");
            else if (c == '\r') escaped.Append("\\r");
            else if (c == '\t') escaped.Append("\\t");
            else if (c < 0x100) escaped.Append("\\x").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
            else escaped.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
        }
        return escaped.ToString();
    }

    public static bool NeedsEscape(string? text) => text != null && text.AsSpan().ContainsAny(Unsafe);

    /// <summary>
    /// The exception as a log prints it (ToString) with its messages escaped; the same instance when none needs it.
    /// The stack trace keeps its line breaks.
    /// </summary>
    public static Exception? Escape(Exception? exception) =>
        exception != null && Chain(exception).Any(e => NeedsEscape(e.Message)) ? new EscapedException(exception) : exception;

    private static IEnumerable<Exception> Chain(Exception exception)
    {
        yield return exception;
        var inner = exception is AggregateException aggregate ? aggregate.InnerExceptions : (IEnumerable<Exception>)(exception.InnerException is { } i ? [i] : []);
        foreach (var e in inner.SelectMany(Chain)) yield return e;
    }

    private sealed class EscapedException(Exception original) : Exception(Escape(original.Message), original.InnerException)
    {
        public override string? StackTrace => original.StackTrace;

        public override string ToString()
        {
            string text = original.ToString();
            foreach (var e in Chain(original).Where(e => NeedsEscape(e.Message)).DistinctBy(e => e.Message))
                text = text.Replace(e.Message, Escape(e.Message), StringComparison.Ordinal);
            return Escape(text, keepNewlines: true); // what is left unsafe came from elsewhere than a message
        }
    }
}
