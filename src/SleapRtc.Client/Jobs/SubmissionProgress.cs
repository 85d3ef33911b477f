namespace SleapRtc.Client.Jobs;

/// <summary>Phases of a submission, in order.</summary>
public enum SubmissionPhase { Discovering, Connecting, Uploading, Training, Downloading, Completed, Inferring }

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
    /// <summary>Inference progress (frames), read from the tracker's output; null for training.</summary>
    public InferenceProgress? Inference { get; init; }

    public int PercentComplete => BytesTotal > 0 ? (int)Math.Clamp(BytesDone * 100 / BytesTotal, 0, 100) : -1;

    public string Describe() => Phase switch
    {
        SubmissionPhase.Uploading or SubmissionPhase.Downloading =>
            $"{BytesDone / 1048576.0:F1} of {BytesTotal / 1048576.0:F1} MB at {MegabytesPerSecond:F1} MB/s" +
            (EstimatedRemaining is { } eta ? $", {eta:hh\\:mm\\:ss} left" : ""),
        SubmissionPhase.Training when Job is not null =>
            $"config {Job.ConfigIndex} of {Job.ConfigCount} ({Job.ConfigName}), epoch {Job.Epoch}" +
            (Job.EpochCount > 0 ? $" of {Job.EpochCount}" : "") + (Job.Loss is { } loss ? $", loss {loss:G4}" : ""),
        SubmissionPhase.Inferring when Inference is not null => Inference.Describe(),
        _ => Phase.ToString(),
    };
}
