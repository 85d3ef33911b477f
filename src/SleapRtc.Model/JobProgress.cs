namespace SleapRtc;

/// <summary>Structured progress of a training job, as published by workers and shown by clients.</summary>
public sealed class JobProgress
{
    public string? JobId { get; set; }
    public string? PackageName { get; set; }
    /// <summary>upload, training, download, done, failed, cancelled.</summary>
    public string Phase { get; set; } = "";
    public int ConfigIndex { get; set; }
    public int ConfigCount { get; set; }
    public string? ConfigName { get; set; }
    public int Epoch { get; set; }
    public int EpochCount { get; set; }
    public double? Loss { get; set; }
    public double? ValLoss { get; set; }
    public double[] LossHistory { get; set; } = Array.Empty<double>();
    public DateTimeOffset? StartedAt { get; set; }
}
