namespace SleapRtc;

/// <summary>The outcome of Submit-SleapInference: where the predictions are and what the tracker reported.</summary>
public sealed class InferenceResult
{
    public string JobId { get; set; } = "";
    public string WorkerId { get; set; } = "";
    /// <summary>Succeeded, Failed or Cancelled.</summary>
    public string Status { get; set; } = "";
    /// <summary>The returned *.predictions.slp, in the output folder.</summary>
    public string? PredictionsPath { get; set; }
    /// <summary>Frames the tracker reported done (0 when it printed no progress).</summary>
    public int Frames { get; set; }
    /// <summary>Instances the tracker reported predicting; null when it did not say.</summary>
    public int? Instances { get; set; }
    public TimeSpan Duration { get; set; }
    public string? DataPath { get; set; }
    public string[] ModelPaths { get; set; } = Array.Empty<string>();
    /// <summary>The inference space that ran it, when the request went to one.</summary>
    public string? Space { get; set; }
    public long UploadedBytes { get; set; }
    /// <summary>Which ICE candidate pair carried the job, local then remote (see TrainingResult.CandidatePair).</summary>
    public string? CandidatePair { get; set; }
    public string? Error { get; set; }
}
