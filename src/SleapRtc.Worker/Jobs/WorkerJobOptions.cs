namespace SleapRtc.Worker.Jobs;

/// <summary>How one job runs on a worker; WorkerHost fills it from WorkerOptions.</summary>
public sealed class WorkerJobOptions
{
    /// <summary>Parent of the per-job temporary folders (removed when each job ends).</summary>
    public required string JobsDirectory { get; init; }
    /// <summary>The trainer executable; null when none was found (jobs then fail with a clear message).</summary>
    public string? TrainerPath { get; init; }
    /// <summary>How far the package may inflate when it is unpacked.</summary>
    public Protocol.Jobs.PackageLimits PackageLimits { get; init; } = Protocol.Jobs.PackageLimits.Default;
    /// <summary>Result chunks; classic workers send 32 KiB, clients accept up to 64 KiB.</summary>
    public int ChunkSize { get; init; } = 32 * 1024;
    public long HighWaterMark { get; init; } = Protocol.Jobs.FrameWriter.DefaultHighWaterMark;
    public TimeSpan KeepAliveInterval { get; init; } = TimeSpan.FromSeconds(15);
    /// <summary>A peer that sends nothing (not even KEEP_ALIVE) for this long is gone.</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromSeconds(25);
    /// <summary>With a client that agreed on heartbeats: how often both send one, and the silence that means the client is dead.</summary>
    public TimeSpan HeartbeatInterval { get; init; } = Protocol.Jobs.ChannelLiveness.DefaultHeartbeatInterval;
    public TimeSpan HeartbeatTimeout { get; init; } = Protocol.Jobs.ChannelLiveness.DefaultHeartbeatTimeout;
    /// <summary>How long to wait for the client to close the channel after the results went out.</summary>
    public TimeSpan ResultsDrainTimeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Where finished jobs' results are kept for collection (issue 12); null keeps nothing.</summary>
    public JobResultStore? Results { get; init; }
    /// <summary>True for a job id this worker already has (running or kept): a client's id is then not adopted.</summary>
    public Func<string, bool>? IsJobIdInUse { get; init; }
    /// <summary>-DataRoot: packages named by worker_package_path are read from here, and results are copied to &lt;root&gt;/jobs/&lt;id&gt;.</summary>
    public string? DataRoot { get; init; }
    /// <summary>How long a trainer asked to stop early (keep checkpoint) may take before it is killed.</summary>
    public TimeSpan StopGrace { get; init; } = Training.TrainerProcess.DefaultStopGrace;
    /// <summary>CPU priority of the trainer and tracker processes.</summary>
    public System.Diagnostics.ProcessPriorityClass TrainerPriority { get; init; } = Training.TrainerProcess.DefaultPriority;
    /// <summary>Inference space: the model folders the worker keeps; they are added to every track command.</summary>
    public IReadOnlyList<string> SpaceModelPaths { get; init; } = Array.Empty<string>();
    /// <summary>Inference space: waits for this request's turn (one at a time, in order).</summary>
    public Func<CancellationToken, Task<IDisposable>>? WaitForTurnAsync { get; init; }
    /// <summary>Inference space: from the end of the upload, the most a request may take (queue and run).</summary>
    public TimeSpan? RequestTimeout { get; init; }
    /// <summary>How the client's channel was authenticated (<see cref="Protocol.Jobs.ChannelAuthStatus"/>), for the job record.</summary>
    public string? ChannelAuth { get; init; }
    /// <summary>Takes a package upload cut off mid-file (client gone, resume agreed) to keep for a resume; null discards it.</summary>
    public Action<ParkedUpload>? ParkUpload { get; init; }
    /// <summary>The signaling peer id of the client on this channel (the offer's sender, which our server sets from the
    /// sender's own connection): a partial upload kept for a resume belongs to it, and only it may resume it.</summary>
    public string? ClientPeerId { get; init; }
    /// <summary>A resume hello (job id, file name and size) from <see cref="ClientPeerId"/>: the matching kept upload when
    /// that client owns it, now the caller's, or null.</summary>
    public Func<string, Protocol.Jobs.TransferPoint, ParkedUpload?>? ClaimParkedUpload { get; init; }
    /// <summary>The connection was offered to resume the upload the worker keeps: a hello that does not claim it is refused
    /// (the worker is reserved for that job; nothing else may start on it).</summary>
    public bool ResumeOnly { get; init; }
    /// <summary>How long a partial upload is kept for its client to resume (told in the worker's log).</summary>
    public TimeSpan PartialUploadRetention { get; init; } = DefaultPartialUploadRetention;
    public static readonly TimeSpan DefaultPartialUploadRetention = TimeSpan.FromMinutes(10);
}

/// <summary>How a job on the worker ended.</summary>
public enum WorkerJobEnd
{
    /// <summary>Every config trained and the results were sent.</summary>
    Succeeded,
    /// <summary>The package or a config failed; the client was told.</summary>
    Failed,
    /// <summary>Stopped on request: the trainer was killed, or stopped early keeping its best checkpoint (results kept).</summary>
    Cancelled,
    /// <summary>The client vanished (channel closed or silent).</summary>
    ClientGone,
    /// <summary>The worker is shutting down.</summary>
    Stopped,
}

/// <param name="UploadParked">The client left mid-upload and the partial package is kept for it to resume (<see cref="ParkedUpload"/>).</param>
public sealed record WorkerJobOutcome(string JobId, WorkerJobEnd End, IReadOnlyList<string> Configs, int FailedConfigs, string? Error,
    bool UploadParked = false);
