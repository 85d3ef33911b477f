namespace SleapRtc.Protocol.Logging;

public enum LogLevel { Trace = 0, Debug = 1, Information = 2, Warning = 3, Error = 4, None = 5 }

/// <summary>
/// Where library components send diagnostic lines. Cmdlets route them to Verbose/Debug streams,
/// the server to its console or file. Messages must never contain room tokens or id_tokens.
/// </summary>
public interface ILogSink
{
    bool IsEnabled(LogLevel level);
    void Write(LogLevel level, string component, string message);
}

public static class Log
{
    /// <summary>The level named by SLEAP_RTC_LOG_LEVEL (trace, debug, info, warning, error, none), default Information.</summary>
    public static LogLevel LevelFromEnvironment()
    {
        var value = Environment.GetEnvironmentVariable("SLEAP_RTC_LOG_LEVEL");
        return ParseLevel(value) ?? LogLevel.Information;
    }

    public static LogLevel? ParseLevel(string? value) => value?.Trim().ToLowerInvariant() switch
    {
        "trace" => LogLevel.Trace,
        "debug" => LogLevel.Debug,
        "info" or "information" => LogLevel.Information,
        "warn" or "warning" => LogLevel.Warning,
        "error" => LogLevel.Error,
        "none" or "off" => LogLevel.None,
        _ => null,
    };

    public static readonly ILogSink Null = new NullSink();

    private sealed class NullSink : ILogSink
    {
        public bool IsEnabled(LogLevel level) => false;
        public void Write(LogLevel level, string component, string message) { }
    }
}

/// <summary>Writes timestamped lines to a TextWriter (console, file) above a minimum level.</summary>
public sealed class TextWriterLogSink : ILogSink
{
    private readonly TextWriter _writer;
    private readonly LogLevel _minimum;
    private readonly object _gate = new();

    public TextWriterLogSink(TextWriter writer, LogLevel minimum)
    {
        _writer = writer;
        _minimum = minimum;
    }

    public bool IsEnabled(LogLevel level) => level >= _minimum && level != LogLevel.None;

    public void Write(LogLevel level, string component, string message)
    {
        if (!IsEnabled(level)) return;
        lock (_gate)
        {
            _writer.WriteLine($"{DateTimeOffset.UtcNow:yyyy-MM-ddTHH:mm:ss.fffZ} {level,-11} {component}: {message}");
            _writer.Flush();
        }
    }
}
