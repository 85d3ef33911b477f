using SleapRtc.Protocol.Logging;

namespace SleapRtc.PowerShell.Infrastructure;

/// <summary>
/// Sends library log lines to the cmdlet's streams (debug/trace to Debug, information to Verbose, warnings and
/// errors to Warning) through the pipeline queue, so they are written on the pipeline thread. Lines logged while no
/// cmdlet is attached are dropped: there is nobody to show them to. Level from SLEAP_RTC_LOG_LEVEL.
/// </summary>
internal sealed class PipelineLogSink : ILogSink
{
    private readonly string _prefix;
    private readonly LogLevel _minimum = Log.LevelFromEnvironment();
    private PipelineQueue? _queue;

    public PipelineLogSink(string prefix) => _prefix = prefix;

    public void Attach(PipelineQueue queue) => Volatile.Write(ref _queue, queue);
    public void Detach() => Volatile.Write(ref _queue, null);

    public bool IsEnabled(LogLevel level) => level >= _minimum && level != LogLevel.None && Volatile.Read(ref _queue) is not null;

    public void Write(LogLevel level, string component, string message)
    {
        var queue = Volatile.Read(ref _queue);
        if (queue is null || !IsEnabled(level)) return;
        var line = $"{_prefix}/{component}: {message}";
        switch (level)
        {
            case LogLevel.Trace or LogLevel.Debug: queue.WriteDebug(line); break;
            case LogLevel.Information: queue.WriteVerbose(line); break;
            default: queue.WriteWarning(line); break;
        }
    }
}
