using SleapRtc.Protocol.Jobs;
using SleapRtc.Protocol.Logging;
using SleapRtc.Protocol.Signaling;
using SleapRtc.Signaling.Client;

namespace SleapRtc.Worker.Jobs;

/// <summary>
/// The one place a worker tells the server about its jobs (<c>job_update</c>, issue 12): every state change at once,
/// progress at most once per <see cref="ProgressInterval"/>, and the running job again after the signaling connection
/// came back. Nothing is sent to a server that does not announce the job queue (classic servers).
/// </summary>
public sealed class JobReporter
{
    private readonly SignalingClient _signaling;
    private readonly ILogSink _log;
    private readonly object _gate = new();
    private readonly Dictionary<string, JobRecord> _active = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _lastProgress = new(StringComparer.Ordinal);

    public JobReporter(SignalingClient signaling, string machineId, ILogSink log, TimeSpan? progressInterval = null)
    {
        _signaling = signaling;
        MachineId = machineId;
        _log = log;
        ProgressInterval = progressInterval ?? TimeSpan.FromSeconds(1);
    }

    public string MachineId { get; }
    public TimeSpan ProgressInterval { get; }

    /// <summary>A state change (or any field other than progress): sent now. Finished jobs are forgotten after this report.</summary>
    public void ReportState(JobRecord record)
    {
        var copy = Stamp(record);
        lock (_gate)
        {
            if (JobStates.IsFinished(copy.State)) { _active.Remove(copy.JobId); _lastProgress.Remove(copy.JobId); }
            else _active[copy.JobId] = copy;
        }
        Send(copy);
    }

    /// <summary>Progress of a running job: sent when the last progress report of that job is older than the interval.</summary>
    public void ReportProgress(string jobId, JobProgress progress)
    {
        JobRecord copy;
        lock (_gate)
        {
            if (!_active.TryGetValue(jobId, out var current)) return;
            var now = Environment.TickCount64;
            if (_lastProgress.TryGetValue(jobId, out var last) && now - last < ProgressInterval.TotalMilliseconds) return;
            _lastProgress[jobId] = now;
            current.Progress = ToRecordProgress(progress);
            copy = current.Clone();
        }
        Send(copy);
    }

    /// <summary>After a reconnect: the running jobs again, so the server keeps (or restores) their records.</summary>
    public void ReportActiveAgain()
    {
        List<JobRecord> active;
        lock (_gate) active = _active.Values.Select(r => r.Clone()).ToList();
        foreach (var record in active) Send(record);
    }

    public static JobRecordProgress ToRecordProgress(JobProgress p) => new()
    {
        ConfigName = p.ConfigName, ConfigIndex = p.ConfigIndex, ConfigCount = p.ConfigCount, Epoch = p.Epoch, EpochCount = p.EpochCount,
        Loss = p.Loss, ValLoss = p.ValLoss, LossHistory = p.LossHistory ?? Array.Empty<double>(),
    };

    private JobRecord Stamp(JobRecord record)
    {
        var copy = record.Clone();
        copy.WorkerId ??= _signaling.Registration?.PeerId;
        copy.RoomId = copy.RoomId.Length > 0 ? copy.RoomId : _signaling.Registration?.RoomId ?? "";
        copy.MachineId ??= MachineId;
        return copy;
    }

    private void Send(JobRecord record)
    {
        if (!_signaling.ServerSupportsJobQueue) return;
        _ = SendAsync(record);
    }

    private async Task SendAsync(JobRecord record)
    {
        try { await _signaling.ReportJobAsync(record).ConfigureAwait(false); }
        catch (Exception e) when (e is SignalingException or InvalidOperationException or OperationCanceledException or IOException or ObjectDisposedException)
        {
            // Offline for now: the running job is reported again after the reconnect (ReportActiveAgain).
            _log.Write(LogLevel.Debug, "worker", $"job_update of {record.JobId} deferred: {e.Message}");
        }
    }
}
