namespace SleapRtc;

/// <summary>The outcome of Submit-SleapTraining.</summary>
public sealed class TrainingResult
{
    public string JobId { get; set; } = "";
    public string WorkerId { get; set; } = "";
    /// <summary>Succeeded, Failed or Cancelled.</summary>
    public string Status { get; set; } = "";
    /// <summary>The job's own folder under -OutputPath (package-time-jobid); null when no results came back.</summary>
    public string? OutputPath { get; set; }
    public string[] ModelPaths { get; set; } = Array.Empty<string>();
    public TimeSpan Duration { get; set; }
    public string[] Configs { get; set; } = Array.Empty<string>();
    public string? PackagePath { get; set; }
    public long UploadedBytes { get; set; }
    public double UploadMBps { get; set; }
    /// <summary>Which ICE candidate pair carried the job, local then remote, e.g. "host 10.0.0.5:41234 -> host 10.0.0.7:50012"
    /// or "relay 10.0.0.9:50012 (turn tcp) -> relay 10.0.0.9:50020" when it went through a TURN server.</summary>
    public string? CandidatePair { get; set; }
    public string? Error { get; set; }
    /// <summary>The trainer's exit code for the first config that failed; null when none failed or the worker did not say.</summary>
    public int? ExitCode { get; set; }
    /// <summary>The worker's last log lines when the job did not succeed, so the failure can be read without -Verbose.</summary>
    public string[] LastLogLines { get; set; } = Array.Empty<string>();

    public override string ToString()
    {
        var text = $"{Status} training job {JobId} on worker {WorkerId}";
        if (!string.IsNullOrEmpty(OutputPath)) text += $", models in {OutputPath}";
        if (!string.IsNullOrEmpty(Error)) text += $": {Error}";
        return text;
    }
}
