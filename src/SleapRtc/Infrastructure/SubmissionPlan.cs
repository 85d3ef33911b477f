using System.Management.Automation;
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

/// <summary>One Submit-SleapTraining, captured from the cmdlet's parameters so it can run in the pipeline or as a job.</summary>
internal sealed record SubmissionPlan(
    string PackagePath, string OutputPath, WorkerInfo? Worker, string? SessionString, string? RoomId, string? Token,
    string? Server, string? WorkerId, bool AutoSelect, long MinGpuMemoryMB, bool ShowLog)
{
    private const int ActivityId = 4711;
    private const string Activity = "Submit-SleapTraining";

    public async Task<TrainingResult> RunAsync(ISubmissionSink sink, Client.Discovery.IWorkerChooser? chooser, CancellationToken cancellationToken)
    {
        var submission = new TrainingSubmission(Options(chooser));
        submission.LogLine += line => Log(sink, line);
        submission.StatusMessage += message => sink.Information(message, showInHost: true);
        submission.ProgressChanged += progress => sink.Progress(ToRecord(progress, ActivityId, Activity));
        return await ReportAsync(sink, ActivityId, Activity, () => submission.RunAsync(cancellationToken), () => submission.ConnectTime).ConfigureAwait(false);
    }

    /// <summary>Runs a submission, notes its connect time, and always completes its progress bar.</summary>
    public static async Task<T> ReportAsync<T>(ISubmissionSink sink, int activityId, string activity, Func<Task<T>> run, Func<TimeSpan?> connectTime)
    {
        try
        {
            var result = await run().ConfigureAwait(false);
            if (connectTime() is { } connect) sink.Verbose($"Data channel open {connect.TotalMilliseconds:F0} ms after the offer.");
            return result;
        }
        finally
        {
            sink.Progress(new ProgressRecord(activityId, activity, "Done") { RecordType = ProgressRecordType.Completed });
        }
    }

    /// <summary>Worker selection and connection as the user gave them (shared with Submit-SleapInference).</summary>
    public SubmissionOptions Options(Client.Discovery.IWorkerChooser? chooser) => new()
    {
        PackagePath = PackagePath,
        OutputPath = OutputPath,
        Worker = Worker,
        SessionString = SessionString,
        RoomId = RoomId,
        Token = Token,
        Server = Server,
        WorkerId = WorkerId,
        AutoSelect = AutoSelect,
        MinGpuMemoryMB = MinGpuMemoryMB,
        Chooser = chooser,
        CredentialStore = ModuleData.Credentials(),
        PeerConnectionFactory = PeerConnectionDefaults.Factory,
        PeerConnection = PeerConnectionDefaults.Options(),
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
            PercentComplete = progress.Phase switch
            {
                SubmissionPhase.Uploading or SubmissionPhase.Downloading => progress.PercentComplete,
                SubmissionPhase.Training when progress.Job is { EpochCount: > 0 } job => Math.Clamp(job.Epoch * 100 / job.EpochCount, 0, 100),
                SubmissionPhase.Inferring when progress.Inference is { FramesTotal: > 0 } frames => frames.PercentComplete,
                _ => -1,
            },
        };
        if ((progress.EstimatedRemaining ?? progress.Inference?.EstimatedRemaining) is { } eta) record.SecondsRemaining = (int)Math.Min(int.MaxValue, eta.TotalSeconds);
        return record;
    }
}
