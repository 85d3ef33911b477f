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

    /// <summary>A finished inference as a report; what kept it from running (and a failed run) is thrown.</summary>
    public async Task<JobReport> RunAsync(ISubmissionSink sink, Client.Discovery.IWorkerChooser? chooser, CancellationToken cancellationToken)
    {
        var submission = new InferenceSubmission(Target.Options(chooser), Request);
        submission.LogLine += line => Target.Log(sink, line);
        submission.StatusMessage += message => sink.Information(message, showInHost: true);
        submission.ProgressChanged += progress => sink.Progress(SubmissionPlan.ToRecord(progress, ActivityId, Activity));
        try
        {
            var result = await submission.RunAsync(cancellationToken).ConfigureAwait(false);
            if (submission.ConnectTime is { } connect) sink.Verbose($"Data channel open {connect.TotalMilliseconds:F0} ms after the offer.");
            return JobReport.Of(result);
        }
        finally
        {
            sink.Progress(new ProgressRecord(ActivityId, Activity, "Done") { RecordType = ProgressRecordType.Completed });
        }
    }
}
