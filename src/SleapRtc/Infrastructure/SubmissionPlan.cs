using System.Management.Automation;
using SleapRtc.Client.Credentials;
using SleapRtc.Client.Jobs;

namespace SleapRtc.PowerShell.Infrastructure;

/// <summary>Where a submission's progress, log lines and notes go: the pipeline (synchronous) or a job's streams (-AsJob).</summary>
internal interface ISubmissionSink
{
    void Progress(ProgressRecord record);
    void Verbose(string text);
    void Information(string text, bool showInHost);
}

internal sealed class QueueSubmissionSink : ISubmissionSink
{
    private readonly PipelineQueue _queue;
    public QueueSubmissionSink(PipelineQueue queue) => _queue = queue;
    public void Progress(ProgressRecord record) => _queue.WriteProgress(record);
    public void Verbose(string text) => _queue.WriteVerbose(text);
    public void Information(string text, bool showInHost) =>
        _queue.WriteInformation(showInHost ? new HostInformationMessage { Message = text } : text,
            showInHost ? new[] { "SleapRtc.Submission", "PSHOST" } : new[] { "SleapRtc.Submission" });
}

/// <summary>
/// One Submit-SleapTraining, captured from the cmdlet's parameters (credentials already resolved on the pipeline
/// thread) so it can run in the pipeline or as a job.
/// </summary>
internal sealed record SubmissionPlan(
    string PackagePath, string OutputPath, ResolvedRoom Room, WorkerInfo? Worker, string? WorkerId, bool AutoSelect,
    long MinGpuMemoryMB, bool ShowLog)
{
    private const int ActivityId = 4711;
    private const string Activity = "Submit-SleapTraining";

    /// <summary>Job id, trainer overrides, a package on the worker's data root, a checkpoint to resume from.</summary>
    public JobRequest Request { get; init; } = new();
    /// <summary>-Queue: the ticket's priority and tags; null submits to a free worker now.</summary>
    public QueueOptions? Queue { get; init; }
    /// <summary>-NoWait: return the job's handle once the worker has accepted the package.</summary>
    public bool NoWait { get; init; }

    /// <summary>
    /// Runs the submission to its end: a job that ran (succeeded or failed) or was cancelled comes back as a report;
    /// what kept it from running (no worker, busy, bad credentials) is thrown.
    /// </summary>
    public async Task<JobReport> RunAsync(ISubmissionSink sink, Client.Discovery.IWorkerChooser? chooser, CancellationToken cancellationToken)
    {
        var submission = new TrainingSubmission(Options(chooser));
        submission.LogLine += line => Log(sink, line);
        submission.StatusMessage += message => sink.Information(message, showInHost: true);
        submission.ProgressChanged += progress => sink.Progress(ToRecord(progress, ActivityId, Activity));
        try
        {
            if (NoWait)
            {
                var handle = await submission.HandOverAsync(cancellationToken).ConfigureAwait(false);
                return JobReport.HandedOver(handle);
            }
            var result = await submission.RunAsync(cancellationToken).ConfigureAwait(false);
            if (submission.ConnectTime is { } connect) sink.Verbose($"Data channel open {connect.TotalMilliseconds:F0} ms after the offer.");
            return JobReport.Of(result);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return JobReport.Of(submission.CancelledResult());
        }
        finally
        {
            sink.Progress(new ProgressRecord(ActivityId, Activity, "Done") { RecordType = ProgressRecordType.Completed });
        }
    }

    /// <summary>Worker selection and connection as the user gave them (shared with Submit-SleapInference).</summary>
    public SubmissionOptions Options(Client.Discovery.IWorkerChooser? chooser) => new()
    {
        PackagePath = PackagePath,
        OutputPath = OutputPath,
        Room = Room,
        Worker = Worker,
        WorkerId = WorkerId,
        AutoSelect = AutoSelect,
        MinGpuMemoryMB = MinGpuMemoryMB,
        Chooser = chooser,
        PeerConnectionFactory = PeerConnectionDefaults.Factory,
        PeerConnection = PeerConnectionDefaults.Options(),
        Request = Request,
        Queue = Queue,
    };

    /// <summary>Worker log lines: shown with -ShowLog, else Verbose.</summary>
    public void Log(ISubmissionSink sink, string line)
    {
        if (ShowLog) sink.Information(line, showInHost: true); else sink.Verbose(line);
    }

    public static ProgressRecord ToRecord(SubmissionProgress progress, int activityId, string activity)
    {
        var record = new ProgressRecord(activityId, activity, progress.Phase.ToString())
        {
            CurrentOperation = progress.Describe(),
            PercentComplete = progress.Phase == SubmissionPhase.Inferring && progress.Inference is { FramesTotal: > 0 } frames
                ? frames.PercentComplete : progress.PercentComplete,
        };
        if ((progress.EstimatedRemaining ?? progress.Inference?.EstimatedRemaining) is { } eta) record.SecondsRemaining = (int)Math.Min(int.MaxValue, eta.TotalSeconds);
        return record;
    }
}
