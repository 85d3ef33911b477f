namespace SleapRtc;

/// <summary>The outcome of Submit-SleapTraining.</summary>
public sealed class TrainingResult
{
    public string JobId { get; set; } = "";
    public string WorkerId { get; set; } = "";
    /// <summary>Succeeded, Failed or Cancelled.</summary>
    public string Status { get; set; } = "";
    public string? OutputPath { get; set; }
    public string[] ModelPaths { get; set; } = Array.Empty<string>();
    public TimeSpan Duration { get; set; }
    public string[] Configs { get; set; } = Array.Empty<string>();
    public string? PackagePath { get; set; }
    public long UploadedBytes { get; set; }
    public double UploadMBps { get; set; }
    public string? Error { get; set; }
}
