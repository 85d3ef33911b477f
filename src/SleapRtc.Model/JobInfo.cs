namespace SleapRtc;

/// <summary>
/// A job's record as the room's signaling server keeps it (Get-SleapJob, Wait-SleapJob, Submit-SleapTraining -NoWait).
/// Its <see cref="JobId"/> and <see cref="RoomId"/> bind by property name to Receive-SleapJob, Wait-SleapJob and Stop-SleapJob.
/// </summary>
public sealed class JobInfo
{
    public string JobId { get; set; } = "";
    /// <summary>Queued, Uploading, Running, Succeeded, Failed or Cancelled.</summary>
    public string State { get; set; } = "";
    public string RoomId { get; set; } = "";
    /// <summary>train or track.</summary>
    public string Kind { get; set; } = "train";
    /// <summary>The worker that runs (or ran) the job; empty while queued.</summary>
    public string? WorkerId { get; set; }
    /// <summary>The worker's machine (host name); several GPU workers of one host share it.</summary>
    public string? MachineId { get; set; }
    public string? PackageName { get; set; }
    public string? PackageSha256 { get; set; }
    /// <summary>How the worker authenticated the submitter's channel: Verified (both proved the room token over the
    /// channel's own DTLS certificates) or Unverified (classic) (a classic peer the worker allowed); empty when unknown.</summary>
    public string? ChannelAuth { get; set; }
    /// <summary>Peer id of the client that submitted it.</summary>
    public string? Submitter { get; set; }
    public int Priority { get; set; }
    /// <summary>1-based place in the room's queue while Queued; null otherwise.</summary>
    public int? Position { get; set; }
    public string? ConfigName { get; set; }
    public int Epoch { get; set; }
    public int EpochCount { get; set; }
    public double? Loss { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    /// <summary>When the server handed the queued ticket to its worker; null for a direct submission or while queued.</summary>
    public DateTimeOffset? AssignedAt { get; set; }
    public DateTimeOffset? StartedAt { get; set; }
    public DateTimeOffset? FinishedAt { get; set; }
    /// <summary>From start to finish (or to now while it runs); null before it starts.</summary>
    public TimeSpan? Duration { get; set; }
    /// <summary>Why it failed or was cancelled.</summary>
    public string? Error { get; set; }
    /// <summary>True while the worker still keeps the results for Receive-SleapJob.</summary>
    public bool ResultsAvailable { get; set; }
    public DateTimeOffset? ResultsExpireAt { get; set; }
    /// <summary>Trainer overrides the job was submitted with (MaxEpochs, BatchSize, LearningRate, RunName, ResumeFrom); empty when none.</summary>
    public IDictionary<string, object?> Overrides { get; set; } = new Dictionary<string, object?>(StringComparer.Ordinal);

    /// <summary>True once the job reached Succeeded, Failed or Cancelled.</summary>
    public bool IsFinished => State is "Succeeded" or "Failed" or "Cancelled";

    /// <summary>Signaling server the record came from, so a piped job carries it to Receive-SleapJob, Wait-SleapJob, Stop-SleapJob.</summary>
    public string? Server { get; set; }
    /// <summary>Room token the record was read with (carried onward like the server); not shown by format views.</summary>
    public string? Token { get; set; }

    public override string ToString() => $"{JobId} ({State})";
}
