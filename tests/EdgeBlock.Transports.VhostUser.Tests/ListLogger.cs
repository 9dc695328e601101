using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace EdgeBlock.Transports.VhostUser.Tests;

/// <summary>Keeps log lines so tests can check that a refusal was logged with its reason.</summary>
internal sealed class ListLogger : ILogger
{
    public ConcurrentQueue<string> Lines { get; } = new();

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        Lines.Enqueue($"{logLevel}: {formatter(state, exception)}{(exception is null ? "" : " " + exception.GetType().Name)}");

    public bool Contains(string text) => Lines.Any(l => l.Contains(text, StringComparison.Ordinal));

    public override string ToString() => string.Join(Environment.NewLine, Lines);
}
