using System.Management.Automation;
using SleapRtc.Client.Jobs;

namespace SleapRtc.PowerShell.Infrastructure;

/// <summary>One Submit-SleapInference: the worker selection (as for training) plus what to infer.</summary>
internal sealed record InferencePlan(SubmissionPlan Target, InferenceRequest Request)
{
    private const int ActivityId = 4712;
    private const string Activity = "Submit-SleapInference";

    internal static readonly TrainingJob.JobKind JobKind =
        new("SleapInference", "SleapInferenceJob", Activity, "InferenceJobFailed", "InferenceJobCancelled");

    public async Task<InferenceResult> RunAsync(ISubmissionSink sink, Client.Discovery.IWorkerChooser? chooser, CancellationToken cancellationToken)
    {
        var submission = new InferenceSubmission(Target.Options(chooser), Request);
        submission.LogLine += line => Target.Log(sink, line);
        submission.StatusMessage += message => sink.Information(message, showInHost: true);
        submission.ProgressChanged += progress => sink.Progress(SubmissionPlan.ToRecord(progress, ActivityId, Activity));
        return await SubmissionPlan.ReportAsync(sink, ActivityId, Activity, () => submission.RunAsync(cancellationToken), () => submission.ConnectTime).ConfigureAwait(false);
    }
}
