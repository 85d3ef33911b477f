namespace SleapRtc.Client.Jobs;

/// <summary>How far a remote "sleap-nn track" has come: frames done of total, frames per second and time left.</summary>
public sealed class InferenceProgress
{
    public int FramesDone { get; init; }
    public int FramesTotal { get; init; }
    public double FramesPerSecond { get; init; }
    public int? Instances { get; init; }

    public int PercentComplete => FramesTotal > 0 ? Math.Min(100, Math.Max(0, FramesDone * 100 / FramesTotal)) : -1;

    public TimeSpan? EstimatedRemaining =>
        FramesPerSecond > 0 && FramesTotal >= FramesDone ? TimeSpan.FromSeconds((FramesTotal - FramesDone) / FramesPerSecond) : null;

    public string Describe() =>
        (FramesTotal > 0 ? $"{FramesDone} of {FramesTotal} frames" : "starting") +
        (FramesPerSecond > 0 ? $" at {FramesPerSecond:F1} frames/s" : "") +
        (EstimatedRemaining is { } eta ? $", {eta:hh\\:mm\\:ss} left" : "");
}
