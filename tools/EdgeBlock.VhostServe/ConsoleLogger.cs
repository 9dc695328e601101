using Microsoft.Extensions.Logging;

namespace EdgeBlock.VhostServe;

/// <summary>Timestamped lines on stderr; enough for a test tool.</summary>
internal sealed class ConsoleLogger(LogLevel minimum) : ILogger
{
    private readonly object _gate = new();

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel >= minimum;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (!IsEnabled(logLevel))
        {
            return;
        }
        string line = $"{DateTime.UtcNow:HH:mm:ss.fff} {logLevel.ToString().ToLowerInvariant()[..4]}: {formatter(state, exception)}";
        if (exception is not null)
        {
            line += Environment.NewLine + exception;
        }
        lock (_gate)
        {
            Console.Error.WriteLine(line);
        }
    }
}
