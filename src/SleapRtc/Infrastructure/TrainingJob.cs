using System.Management.Automation;
using SleapRtc.Protocol.Jobs;

namespace SleapRtc.PowerShell.Infrastructure;

/// <summary>
/// Submit-SleapTraining -AsJob (and Submit-SleapInference -AsJob): a real PowerShell job in the session's job repository, so Get-Job, Receive-Job,
/// Wait-Job, Stop-Job and Remove-Job work. Its streams fill live; Stop-Job cancels the job on the worker.
/// </summary>
public sealed class TrainingJob : Job2
{
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(15);
    private readonly CancellationTokenSource _cancel = new();
    private Task _run = Task.CompletedTask;

    private readonly string _source;

    private TrainingJob(string command, string name, string typeName, string source) : base(command, name)
    {
        PSJobTypeName = typeName;
        _source = source;
    }

    internal static TrainingJob Start(PSCmdlet cmdlet, SubmissionPlan plan, string command) =>
        Start(cmdlet, command, new JobKind("SleapTraining", "SleapTrainingJob", "Submit-SleapTraining", "TrainingJobFailed", null),
            plan.WorkerId ?? plan.Worker?.PeerId ?? plan.RoomId, plan.PackagePath,
            async (sink, ct) => await plan.RunAsync(sink, chooser: null, ct).ConfigureAwait(false));

    /// <summary>Names and error ids of one kind of submission job.</summary>
    /// <param name="CancelledErrorId">When set, a stopped job also records an ErrorRecord with this id.</param>
    internal sealed record JobKind(string Name, string TypeName, string Source, string FailedErrorId, string? CancelledErrorId);

    internal static TrainingJob Start(PSCmdlet cmdlet, string command, JobKind kind, object? target, object? fallbackTarget,
        Func<ISubmissionSink, CancellationToken, Task<object>> run)
    {
        var job = new TrainingJob(command, kind.Name, kind.TypeName, kind.Source);
        cmdlet.JobRepository.Add(job);
        job.Begin(kind, target, fallbackTarget, run);
        return job;
    }

    private void Begin(JobKind kind, object? target, object? fallbackTarget, Func<ISubmissionSink, CancellationToken, Task<object>> run)
    {
        SetJobState(JobState.Running);
        _run = Task.Run(async () =>
        {
            try
            {
                var result = await run(new JobSink(this), _cancel.Token).ConfigureAwait(false);
                Output.Add(PSObject.AsPSObject(result));
                SetJobState(JobState.Completed);
            }
            catch (OperationCanceledException) when (_cancel.IsCancellationRequested)
            {
                if (kind.CancelledErrorId is { } cancelled)
                    Error.Add(SleapErrors.Create(cancelled, ErrorCategory.OperationStopped, target,
                        "The job was stopped; the worker was told to stop it.", "Submit it again when you want the results."));
                SetJobState(JobState.Stopped);
            }
            catch (SleapRtcException ex)
            {
                Error.Add(SleapErrors.FromLibrary(ex, target));
                SetJobState(JobState.Failed);
            }
            catch (Exception ex)
            {
                // A job must end in a final state whatever happens; the error record carries what went wrong.
                Error.Add(new ErrorRecord(ex, kind.FailedErrorId, ErrorCategory.NotSpecified, fallbackTarget));
                SetJobState(JobState.Failed);
            }
        });
    }

    public override string StatusMessage => JobStateInfo.State.ToString();

    public override bool HasMoreData =>
        Output.Count > 0 || Error.Count > 0 || Progress.Count > 0 || Verbose.Count > 0 || Warning.Count > 0 || Information.Count > 0;

    public override string Location => Environment.MachineName;

    public override void StopJob()
    {
        if (IsFinished) return;
        SetJobState(JobState.Stopping);
        _cancel.Cancel();
        if (!_run.Wait(StopGrace)) SetJobState(JobState.Stopped);
    }

    public override void StopJob(bool force, string reason) => StopJob();
    /// <summary>Stop-Job uses the asynchronous form and waits for StopJobCompleted.</summary>
    public override void StopJobAsync() => Task.Run(() =>
    {
        Exception? failure = null;
        try { StopJob(); }
        catch (Exception ex) { failure = ex; }
        OnStopJobCompleted(new System.ComponentModel.AsyncCompletedEventArgs(failure, false, null));
    });

    public override void StopJobAsync(bool force, string reason) => StopJobAsync();

    public override void StartJob() => throw new InvalidOperationException("A training job starts when it is submitted.");
    public override void StartJobAsync() => StartJob();
    public override void SuspendJob() => throw new NotSupportedException("Training jobs cannot be suspended; use Stop-Job.");
    public override void SuspendJob(bool force, string reason) => SuspendJob();
    public override void SuspendJobAsync() => SuspendJob();
    public override void SuspendJobAsync(bool force, string reason) => SuspendJob();
    public override void ResumeJob() => throw new NotSupportedException("Training jobs cannot be suspended or resumed.");
    public override void ResumeJobAsync() => ResumeJob();
    public override void UnblockJob() => throw new NotSupportedException("Training jobs never block.");
    public override void UnblockJobAsync() => UnblockJob();

    private bool IsFinished => JobStateInfo.State is JobState.Completed or JobState.Failed or JobState.Stopped;

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            if (!IsFinished) _cancel.Cancel();
            _cancel.Dispose();
        }
        base.Dispose(disposing);
    }

    private sealed class JobSink : ISubmissionSink
    {
        private readonly TrainingJob _job;
        public JobSink(TrainingJob job) => _job = job;
        public void Progress(ProgressRecord record) => _job.Progress.Add(record);
        public void Verbose(string text) => _job.Verbose.Add(new VerboseRecord(text));
        public void Information(string text, bool showInHost) =>
            _job.Information.Add(new InformationRecord(text, _job._source));
    }
}
