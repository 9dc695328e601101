using EdgeBlock.Daemon.Logging;

namespace EdgeBlock.Daemon.Tests;

public sealed class LogTextTests
{
    [Fact]
    public void Escape_ControlAndBidiCharacters_AreWrittenAsEscapes()
    {
        string escaped = LogText.Escape("a\nb\r\t\x1b[31m\0\x7f\u0085\u202e\u2066\u2028z");

        Assert.Equal(@"a\nb\r\t\x1b[31m\x00\x7f\x85\u202e\u2066\u2028z", escaped);
    }

    [Fact]
    public void Escape_SafeText_IsTheSameInstance()
    {
        string text = "pool p1: volume vm-1 created, größe 1 MiB";

        Assert.Same(text, LogText.Escape(text));
    }

    [Fact]
    public void Escape_ExceptionWithControlCharactersInItsMessage_KeepsItsStackTraceLines()
    {
        Exception thrown;
        try { throw new InvalidOperationException("outer", new IOException("cannot open evil\n[fake] ERROR\x1b[2J")); }
        catch (InvalidOperationException e) { thrown = e; }

        string text = LogText.Escape(thrown)!.ToString();

        Assert.Contains(@"cannot open evil\n[fake] ERROR\x1b[2J", text);
        Assert.DoesNotContain('\x1b', text);
        Assert.DoesNotContain("\n[fake]", text);
        Assert.Contains("\n   at ", text); // the stack trace keeps its lines
    }
}
