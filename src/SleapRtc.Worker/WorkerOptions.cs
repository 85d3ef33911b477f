using SleapRtc.Protocol.Jobs;
using SleapRtc.Protocol.Logging;
using SleapRtc.Signaling.Client;
using SleapRtc.WebRtc;
using SleapRtc.Worker.Jobs;

namespace SleapRtc.Worker;

/// <summary>Everything Start-SleapWorker can set. Only <see cref="Server"/> and <see cref="PeerConnectionFactory"/> are required.</summary>
public sealed record WorkerOptions
{
    /// <summary>Signaling server URL (ws://, http://, host:port). The cmdlet starts an embedded server when the user gives none.</summary>
    public required string Server { get; init; }
    /// <summary>Room to join; null creates a new room on the server.</summary>
    public string? RoomId { get; init; }
    public string? Token { get; init; }
    /// <summary>Readable worker name (advertised as worker_name; also names a newly created room).</summary>
    public string? Name { get; init; }
    /// <summary>Which GPU this worker advertises and trains on (nvidia-smi index).</summary>
    public int GpuId { get; init; }
    /// <summary>Parent folder of the per-job temporary folders; default &lt;temp&gt;/SleapRtc/worker-&lt;peer id&gt;.</summary>
    public string? WorkingDirectory { get; init; }
    /// <summary>Which job folders left by a killed worker survive the next start in the same working directory (default none).</summary>
    public IJobFolderRetention JobFolderRetention { get; init; } = Jobs.JobFolderRetention.KeepNothing;
    /// <summary>nvidia-smi to query; else SLEAP_RTC_NVIDIA_SMI, else PATH.</summary>
    public string? NvidiaSmiPath { get; init; }
    /// <summary>The trainer; else SLEAP_RTC_SLEAP_NN, else sleap-nn on PATH.</summary>
    public string? SleapNnPath { get; init; }
    /// <summary>Tags added to the classic ones ("sleap-rtc", "training-worker", "inference-worker").</summary>
    public IReadOnlyList<string> Tags { get; init; } = Array.Empty<string>();

    /// <summary>How long a finished job's results are kept for collection (from the job's end). Default 7 days.</summary>
    public TimeSpan ResultRetention { get; init; } = DefaultResultRetention;
    /// <summary>The most the kept results of all jobs may take on disk; beyond it the oldest are removed. Default 20 GB.</summary>
    public long ResultQuotaBytes { get; init; } = DefaultResultQuotaBytes;
    /// <summary>How often expired results are looked for.</summary>
    public TimeSpan ResultSweepInterval { get; init; } = TimeSpan.FromMinutes(1);
    /// <summary>How long a package upload cut off mid-file is kept (and the worker reserved) for its client to resume it.</summary>
    public TimeSpan PartialUploadRetention { get; init; } = Jobs.WorkerJobOptions.DefaultPartialUploadRetention;
    /// <summary>How many result collections may run at once (beside a training job).</summary>
    public int MaxConcurrentCollections { get; init; } = 4;
    /// <summary>Shared storage: clients may name a package under it (worker_package_path) instead of uploading, and every job's
    /// results are also copied to &lt;root&gt;/jobs/&lt;job id&gt;/.</summary>
    public string? DataRoot { get; init; }
    /// <summary>How long a trainer asked to stop early (keep checkpoint) may take before it is killed.</summary>
    public TimeSpan StopGrace { get; init; } = Training.TrainerProcess.DefaultStopGrace;
    /// <summary>CPU priority of the trainer and tracker processes (their children inherit it); see <see cref="Training.TrainerProcess.DefaultPriority"/>.</summary>
    public System.Diagnostics.ProcessPriorityClass TrainerPriority { get; init; } = Training.TrainerProcess.DefaultPriority;
    /// <summary>The machine this worker belongs to (advertised as machine_id; GPU workers of one host share it).</summary>
    public string MachineId { get; init; } = Environment.MachineName;

    public static readonly TimeSpan DefaultResultRetention = TimeSpan.FromDays(7);
    public const long DefaultResultQuotaBytes = 20L * 1000 * 1000 * 1000;

    /// <summary>A package whose entries or whole inflate beyond this many times their compressed size is refused (zip bombs).</summary>
    public double MaxPackageRatio { get; init; } = PackageLimits.DefaultMaxCompressionRatio;
    /// <summary>A package that unpacks to more than this many bytes is refused; free disk space is checked as well.</summary>
    public long MaxUnpackedSize { get; init; } = PackageLimits.DefaultMaxUnpackedBytes;
    /// <summary>Serve this named inference space (role "space"): requests queue here, one at a time.</summary>
    public string? Space { get; init; }
    /// <summary>The space's model folders, kept on this worker; requests send only data.</summary>
    public IReadOnlyList<string> SpaceModelPaths { get; init; } = Array.Empty<string>();
    /// <summary>The most a space request may take from the end of its upload (queue and run).</summary>
    public TimeSpan SpaceRequestTimeout { get; init; } = TimeSpan.FromMinutes(2);
    /// <summary>-RequireChannelAuth: refuse classic peers too (they cannot prove the room token over the channel).
    /// Clients of ours always prove it; without the switch classic peers are served, unverified, for compatibility.</summary>
    public bool RequireChannelAuth { get; init; }

    public required IPeerConnectionFactory PeerConnectionFactory { get; init; }
    /// <summary>Template for peer connections (loopback candidates, local addresses); STUN servers come from the signaling server.</summary>
    public PeerConnectionOptions? PeerConnection { get; init; }
    public SignalingClientOptions? Signaling { get; init; }
    public ILogSink Log { get; init; } = Protocol.Logging.Log.Null;

    /// <summary>How long an accepted offer may take to open its data channel before the worker is available again.</summary>
    public TimeSpan ReservationTimeout { get; init; } = TimeSpan.FromSeconds(20);
    public TimeSpan KeepAliveInterval { get; init; } = TimeSpan.FromSeconds(15);
    /// <summary>A classic client that sends nothing for this long is gone; the job ends and the worker is available again.</summary>
    public TimeSpan ClientIdleTimeout { get; init; } = TimeSpan.FromSeconds(25);
    /// <summary>With a SleapRtc client (negotiated): a heartbeat each way this often, and the client is gone after this much silence.</summary>
    public TimeSpan HeartbeatInterval { get; init; } = ChannelLiveness.DefaultHeartbeatInterval;
    public TimeSpan HeartbeatTimeout { get; init; } = ChannelLiveness.DefaultHeartbeatTimeout;
    /// <summary>Job progress is published to the server's metadata at most this often (the monitor reads it).</summary>
    public TimeSpan ProgressPublishInterval { get; init; } = TimeSpan.FromMilliseconds(500);
    public TimeSpan GpuProbeTimeout { get; init; } = TimeSpan.FromSeconds(10);
}
