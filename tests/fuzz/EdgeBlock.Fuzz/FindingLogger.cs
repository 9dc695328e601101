using Microsoft.Extensions.Logging;

namespace EdgeBlock.Fuzz;

/// <summary>
/// Drops log output, except that an entry carrying an exception at Error level or above is a finding: that is
/// how the daemon reports a bug it survived (a command that threw, a session that failed unexpectedly).
/// </summary>
internal sealed class FindingLogger : ILogger
{
    private Exception? _finding;
    private string? _message;

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
    public bool IsEnabled(LogLevel logLevel) => Verbose || logLevel >= LogLevel.Error;

    /// <summary>EDGEBLOCK_FUZZ_LOG=1 prints every entry (to see where a replayed input goes).</summary>
    public static readonly bool Verbose = Environment.GetEnvironmentVariable("EDGEBLOCK_FUZZ_LOG") == "1";

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (Verbose) Console.Error.WriteLine($"{logLevel}: {formatter(state, exception)}");
        if (logLevel < LogLevel.Error || exception == null || _finding != null) return;
        _finding = exception;
        _message = formatter(state, exception);
    }

    public void ThrowIfFinding()
    {
        if (_finding is not { } finding) return;
        _finding = null;
        throw new InvalidOperationException($"logged as unexpected: {_message}", finding);
    }
}
