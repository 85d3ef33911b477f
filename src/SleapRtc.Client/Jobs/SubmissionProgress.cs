namespace SleapRtc.Client.Jobs;

/// <summary>Phases of a submission, in order.</summary>
public enum SubmissionPhase { Discovering, Connecting, Uploading, Training, Downloading, Completed, Inferring, Queued }

/// <summary>
/// A snapshot of a submission for progress display (Write-Progress): upload MB, MB/s and ETA; training
/// config i of n, epoch e of E and loss; download MB. Raised at most a few times a second.
/// </summary>
public sealed class SubmissionProgress
{
    public SubmissionPhase Phase { get; init; }
    public string? WorkerId { get; init; }
    public long BytesTotal { get; init; }
    public long BytesDone { get; init; }
    public double MegabytesPerSecond { get; init; }
    public TimeSpan? EstimatedRemaining { get; init; }
    /// <summary>Training progress as the worker reports it (structured with our workers, parsed from logs otherwise).</summary>
    public JobProgress? Job { get; init; }
    /// <summary>While <see cref="SubmissionPhase.Queued"/>: the ticket's 1-based place in the room's queue.</summary>
    public int? QueuePosition { get; init; }
    /// <summary>A transfer that continues a cut-off one: the byte it resumed at (what the other side confirmed).</summary>
    public long? ResumedAt { get; init; }
    /// <summary>While the connection is being re-established after it was lost mid-transfer: retry n (1-based) of <see cref="MaxRetries"/>.</summary>
    public int? RetryAttempt { get; init; }
    public int MaxRetries { get; init; }
    /// <summary>Inference progress (frames), read from the tracker's output; null for training.</summary>
    public InferenceProgress? Inference { get; init; }

    /// <summary>
    /// Percent of the current phase: bytes for the transfers; for training, the whole job (every config), so the bar
    /// does not start again at each config. -1 when unknown.
    /// </summary>
    public int PercentComplete => Phase switch
    {
        SubmissionPhase.Uploading or SubmissionPhase.Downloading =>
            BytesTotal > 0 ? (int)Math.Clamp(BytesDone * 100 / BytesTotal, 0, 100) : -1,
        SubmissionPhase.Training => TrainingPercent(),
        _ => -1,
    };

    private int TrainingPercent()
    {
        if (Job is not { EpochCount: > 0 } job) return -1;
        var configs = Math.Max(1, job.ConfigCount);
        var configsDone = Math.Clamp(job.ConfigIndex - 1, 0, configs - 1);
        var withinConfig = Math.Clamp((double)job.Epoch / job.EpochCount, 0, 1);
        return (int)Math.Clamp((configsDone + withinConfig) * 100 / configs, 0, 100);
    }

    public string Describe() => Phase switch
    {
        SubmissionPhase.Uploading or SubmissionPhase.Downloading when RetryAttempt is { } attempt =>
            $"connection lost; resuming at {Size(BytesDone, BytesTotal)} (retry {attempt} of {MaxRetries})",
        SubmissionPhase.Uploading or SubmissionPhase.Downloading when BytesTotal > 0 && ResumedAt is { } at =>
            $"{Size(BytesDone, BytesTotal)} at {MegabytesPerSecond:F1} MB/s, resumed at {at / 1048576.0:F1} MB" +
            (EstimatedRemaining is { } left ? $", {left:hh\\:mm\\:ss} left" : ""),
        SubmissionPhase.Uploading or SubmissionPhase.Downloading when BytesTotal > 0 =>
            $"{Size(BytesDone, BytesTotal)} at {MegabytesPerSecond:F1} MB/s" +
            (EstimatedRemaining is { } eta ? $", {eta:hh\\:mm\\:ss} left" : ""),
        SubmissionPhase.Downloading => "waiting for the worker to send the models",
        SubmissionPhase.Training when Job is { ConfigIndex: > 0 } => DescribeTraining(Job),
        SubmissionPhase.Training => "waiting for the trainer to start",
        SubmissionPhase.Inferring when Inference is not null => Inference.Describe(),
        SubmissionPhase.Queued => QueuePosition is { } position ? $"queued, position {position}" : "queued, waiting for a worker",
        _ => Phase.ToString(),
    };

    /// <summary>"3.2 of 120.0 MB"; below a megabyte in KB, so a small results archive does not read "0.0 of 0.0 MB".</summary>
    private static string Size(long done, long total) => total >= 1048576
        ? $"{done / 1048576.0:F1} of {total / 1048576.0:F1} MB"
        : $"{done / 1024.0:F1} of {total / 1024.0:F1} KB";

    // Classic workers never say how many configs there are: "config 2" rather than "config 2 of 0".
    private static string DescribeTraining(JobProgress job) =>
        $"config {job.ConfigIndex}" + (job.ConfigCount > 0 ? $" of {job.ConfigCount}" : "") +
        (string.IsNullOrEmpty(job.ConfigName) ? "" : $" ({job.ConfigName})") +
        $", epoch {job.Epoch}" + (job.EpochCount > 0 ? $" of {job.EpochCount}" : "") +
        (job.Loss is { } loss ? $", loss {loss:G4}" : "");
}
