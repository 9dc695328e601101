using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace EdgeBlock.Daemon.Logging;

/// <summary>
/// The daemon's logger factory: every logger it makes escapes the formatted message and the exception's messages
/// (<see cref="LogText"/>) before any provider sees them, so each call site that logs a name, path or NQN is covered
/// at once, whatever the provider (console, journald, a test's).
/// </summary>
internal sealed class EscapingLoggerFactory(ILoggerFactory inner) : ILoggerFactory
{
    /// <summary>Replaces the host's ILoggerFactory (Microsoft.Extensions.Logging's, built from the same services) with this one.</summary>
    public static void Register(IServiceCollection services) =>
        services.Replace(ServiceDescriptor.Singleton<ILoggerFactory>(sp => new EscapingLoggerFactory(new LoggerFactory(
            sp.GetServices<ILoggerProvider>(), sp.GetRequiredService<IOptionsMonitor<LoggerFilterOptions>>(),
            sp.GetService<IOptions<LoggerFactoryOptions>>(), sp.GetService<IExternalScopeProvider>()))));

    public ILogger CreateLogger(string categoryName) => new EscapingLogger(inner.CreateLogger(categoryName));

    public void AddProvider(ILoggerProvider provider) => inner.AddProvider(provider);

    public void Dispose() => inner.Dispose();

    private sealed class EscapingLogger(ILogger inner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => inner.BeginScope(state);

        public bool IsEnabled(LogLevel logLevel) => inner.IsEnabled(logLevel);

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!inner.IsEnabled(logLevel)) return;
            inner.Log(logLevel, eventId, state, LogText.Escape(exception), (s, _) => LogText.Escape(formatter(s, exception)));
        }
    }
}
