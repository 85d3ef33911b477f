using SleapRtc.Protocol.Jobs;
using SleapRtc.Protocol.Signaling;

namespace SleapRtc.Client.Jobs;

/// <summary>
/// What the client asks of the worker for one job beyond the package itself, said in the SLEAPRTC_HELLO (so only our
/// workers receive it): the job id (the worker adopts it, so a queue ticket and the job share one id), trainer
/// overrides, a package already on the worker's data root, a checkpoint to resume from, and whether the client leaves
/// once the worker has accepted the package (-NoWait).
/// </summary>
public sealed record JobRequest
{
    public string JobId { get; init; } = JobRecords.NewJobId();
    public TrainingOverrides? Overrides { get; init; }
    /// <summary>A package under the worker's data root (relative name); nothing is uploaded.</summary>
    public string? WorkerPackagePath { get; init; }
    /// <summary>A local checkpoint folder, sent zipped as <c>resume-&lt;folder&gt;.zip</c> before the package.</summary>
    public string? ResumeFromFolder { get; init; }
    /// <summary>Return as soon as the worker says SLEAPRTC_ACCEPTED; the job goes on without this client.</summary>
    public bool ReturnWhenAccepted { get; init; }
    /// <summary>This connection resumes the cut-off upload of the package (name and size) for <see cref="JobId"/>; set by the
    /// submission's retries, never by the user.</summary>
    public TransferPoint? ResumeUpload { get; init; }

    /// <summary>True when the request needs a worker that speaks our extensions (a classic worker would ignore it).</summary>
    public bool NeedsExtensions => Overrides is { IsEmpty: false } || WorkerPackagePath is not null || ResumeFromFolder is not null || ReturnWhenAccepted;

    /// <summary>The option a classic worker cannot honour, named as the user typed it.</summary>
    public string? FirstExtensionOption() =>
        WorkerPackagePath is not null ? "-WorkerPackagePath" : ResumeFromFolder is not null ? "-ResumeFrom"
        : Overrides is { IsEmpty: false } ? "trainer overrides (-MaxEpochs, -BatchSize, -LearningRate, -RunName)" : ReturnWhenAccepted ? "-NoWait" : null;

    /// <summary>The hello this request sends (our workers only).</summary>
    public string HelloMessage() => JobExtensions.HelloMessage(new JobExtensions.Handshake
    {
        JobId = JobId,
        Overrides = Overrides is { IsEmpty: false } ? Overrides : null,
        WorkerPackagePath = WorkerPackagePath,
        ResumeUpload = ResumeUpload,
    });

    /// <summary>The FILE_META name of the zipped checkpoint folder, as the worker expects it.</summary>
    public static string ResumeArchiveName(string folderName) => "resume-" + folderName + ".zip";

    /// <summary>The name a checkpoint folder is known by on the worker (its last path segment).</summary>
    public static string FolderName(string folder) =>
        Path.GetFileName(Path.GetFullPath(folder).TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar));
}
