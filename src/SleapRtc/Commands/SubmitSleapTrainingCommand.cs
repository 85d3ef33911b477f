using System.Management.Automation;
using SleapRtc.Client.Jobs;
using SleapRtc.PowerShell.Completion;
using SleapRtc.PowerShell.Infrastructure;
using SleapRtc.Protocol.Jobs;
using SleapRtc.Protocol.Signaling;

namespace SleapRtc.PowerShell.Commands;

/// <summary>
/// Sends a training package to a worker (now, or through the room's queue with -Queue), shows progress and the worker's
/// log, and returns the trained models; -NoWait returns the job's handle once the worker has the package.
/// </summary>
[Cmdlet(VerbsLifecycle.Submit, "SleapTraining", DefaultParameterSetName = UploadSet, HelpUri = ModuleLinks.Docs + "Submit-SleapTraining.md")]
[OutputType(typeof(TrainingResult))]
[OutputType(typeof(JobInfo))]
[OutputType(typeof(Job))]
public sealed class SubmitSleapTrainingCommand : WorkerSelectingCmdlet
{
    private const string UploadSet = "Upload";
    private const string WorkerStorageSet = "WorkerStorage";

    [Parameter(Mandatory = true, Position = 0, ParameterSetName = UploadSet)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(PackagePathCompleter))]
    public string PackagePath { get; set; } = "";

    /// <summary>A package already on the worker's -DataRoot, relative to it: nothing is uploaded.</summary>
    [Parameter(Mandatory = true, ParameterSetName = WorkerStorageSet)]
    [ValidateNotNullOrEmpty]
    public string? WorkerPackagePath { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? OutputPath { get; set; }

    /// <summary>Worker log lines go to the Information stream (shown) instead of Verbose.</summary>
    [Parameter]
    public SwitchParameter ShowLog { get; set; }

    [Parameter]
    public SwitchParameter AsJob { get; set; }

    /// <summary>Wait in the room's queue for a matching worker instead of needing a free one now.</summary>
    [Parameter]
    public SwitchParameter Queue { get; set; }

    /// <summary>-Queue only: higher runs first; first come, first served within a priority.</summary>
    [Parameter]
    [ValidateRange(-100, 100)]
    public int Priority { get; set; }

    /// <summary>-Queue only: tags the worker must carry (Start-SleapWorker -Tag).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    [ValidateCount(1, 16)]
    public string[] Tag { get; set; } = Array.Empty<string>();

    /// <summary>Return the job's handle (JobInfo) once the worker has the package; the job runs on without this session.</summary>
    [Parameter]
    public SwitchParameter NoWait { get; set; }

    [Parameter]
    [ValidateRange(1, 100000)]
    public int MaxEpochs { get; set; }

    [Parameter]
    [ValidateRange(1, 65536)]
    public int BatchSize { get; set; }

    [Parameter]
    [ValidateRange(double.Epsilon, 10.0)]
    public double LearningRate { get; set; }

    [Parameter]
    [ValidatePattern(@"^[A-Za-z0-9_.-]{1,64}$")]
    public string? RunName { get; set; }

    /// <summary>A model folder of an earlier run; training continues from its best.ckpt.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? ResumeFrom { get; set; }

    protected override void ProcessRecord()
    {
        var packagePath = WorkerPackagePath ?? GetUnresolvedProviderPathFromPSPath(PackagePath);
        var outputPath = GetUnresolvedProviderPathFromPSPath(OutputPath ?? ".");
        var resumeFrom = ResumeFrom is null ? null : GetUnresolvedProviderPathFromPSPath(ResumeFrom);
        var interactive = HostWorkerChooser.IsInteractive(Host) && !AsJob;
        SubmissionPlan plan;
        try
        {
            // Checked before anything connects: a bad package, path or option costs nothing and leaves nothing behind.
            if (!Queue && (IsBound(nameof(Priority)) || IsBound(nameof(Tag)))) throw QueueOptionWithoutQueue();
            if (WorkerPackagePath is not null) SubmissionPreflight.CheckWorkerPackagePath(WorkerPackagePath);
            else SubmissionPreflight.CheckPackage(packagePath);
            if (resumeFrom is not null) SubmissionPreflight.CheckResumeFolder(resumeFrom);
            SubmissionPreflight.CheckOutputPath(outputPath);
            // A queued ticket waits for the server's choice; only a direct submission needs someone to pick the worker.
            plan = PlanSubmission(packagePath, outputPath, ShowLog, workerChosenElsewhere: Queue) with
            {
                Request = new JobRequest
                {
                    Overrides = Overrides(resumeFrom),
                    WorkerPackagePath = WorkerPackagePath,
                    ResumeFromFolder = resumeFrom,
                },
                Queue = Queue ? new QueueOptions { Priority = Priority, Tags = Tag } : null,
                NoWait = NoWait,
            };
        }
        catch (SleapRtcException ex)
        {
            ThrowTerminatingError(SleapErrors.FromLibrary(ex, ex is PackageNotFoundException or InvalidTrainingPackageException ? PackagePath
                : ex is InvalidWorkerPackagePathException ? WorkerPackagePath : ex is CheckpointNotFoundException ? ResumeFrom
                : ex is OutputPathNotWritableException ? OutputPath : RoomId));
            return;
        }

        if (AsJob)
        {
            WriteObject(TrainingJob.Start(this, plan, MyInvocation.Line));
            return;
        }
        JobReport report;
        try
        {
            report = RunOnBackground((queue, ct) => plan.RunAsync(new QueueSubmissionSink(queue), interactive ? new HostWorkerChooser(queue, ct) : null, ct));
        }
        catch (SleapRtcException ex)
        {
            ThrowTerminatingError(SleapErrors.FromLibrary(ex, TargetName));
            return;
        }
        report.Deliver(WriteObject, WriteError);
    }

    private bool IsBound(string parameter) => MyInvocation.BoundParameters.ContainsKey(parameter);

    /// <summary>The trainer overrides the user gave (null when none); ResumeFrom is the folder's name as the worker knows it.</summary>
    private TrainingOverrides? Overrides(string? resumeFrom)
    {
        var overrides = new TrainingOverrides
        {
            MaxEpochs = IsBound(nameof(MaxEpochs)) ? MaxEpochs : null,
            BatchSize = IsBound(nameof(BatchSize)) ? BatchSize : null,
            LearningRate = IsBound(nameof(LearningRate)) ? LearningRate : null,
            RunName = RunName,
            ResumeFrom = resumeFrom is null ? null : JobRequest.FolderName(resumeFrom),
        };
        return overrides.IsEmpty ? null : overrides;
    }

    internal static SleapRtcException QueueOptionWithoutQueue() => new(
        "QueueOptionWithoutQueue", SleapRtcErrorKind.InvalidArgument,
        "-Priority and -Tag describe a queue ticket, and this submission does not queue.",
        "Add -Queue to wait in the room's queue, or leave -Priority and -Tag out.");
}
