using System.Management.Automation;
using SleapRtc.Protocol.Jobs;

namespace SleapRtc.PowerShell.Infrastructure;

/// <summary>
/// Submit-SleapTraining -AsJob: a real PowerShell job in the session's job repository, so Get-Job, Receive-Job,
/// Wait-Job, Stop-Job and Remove-Job work. Like every built-in job type it is a parent with one child job that holds
/// the streams (so the usual $job.ChildJobs[0].Progress works; Receive-Job reads the child). They fill live;
/// Stop-Job cancels the job on the worker.
/// </summary>
public sealed class TrainingJob : Job2
{
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(15);
    private readonly CancellationTokenSource _cancel = new();
    private readonly TrainingJobRun _child;
    private Task _run = Task.CompletedTask;

    private readonly JobKind _kind;

    private TrainingJob(string command, JobKind kind) : base(command, kind.Name)
    {
        _kind = kind;
        PSJobTypeName = kind.TypeName;
        _child = new TrainingJobRun(command, kind);
        ChildJobs.Add(_child);
    }

    /// <summary>Names and error ids of one kind of submission job (training, inference).</summary>
    /// <param name="CancelledErrorId">When set, a stopped job also records an ErrorRecord with this id.</param>
    internal sealed record JobKind(string Name, string TypeName, string Source, string FailedErrorId, string? CancelledErrorId);

    internal static readonly JobKind Training = new("SleapTraining", "SleapTrainingJob", "Submit-SleapTraining", "TrainingJobFailed", null);

    internal static TrainingJob Start(PSCmdlet cmdlet, SubmissionPlan plan, string command) =>
        Start(cmdlet, command, Training, plan.WorkerId ?? plan.Worker?.PeerId ?? plan.Room.RoomId, plan.PackagePath,
            (sink, ct) => plan.RunAsync(sink, chooser: null, ct));

    internal static TrainingJob Start(PSCmdlet cmdlet, string command, JobKind kind, object? target, object? fallbackTarget,
        Func<ISubmissionSink, CancellationToken, Task<JobReport>> run)
    {
        var job = new TrainingJob(command, kind);
        cmdlet.JobRepository.Add(job);
        job.Begin(target, fallbackTarget, run);
        return job;
    }

    private void Begin(object? target, object? fallbackTarget, Func<ISubmissionSink, CancellationToken, Task<JobReport>> run)
    {
        SetState(JobState.Running);
        var child = _child;
        _run = Task.Run(async () =>
        {
            try
            {
                var report = await run(new JobSink(child, _kind.Source), _cancel.Token).ConfigureAwait(false);
                report.Deliver(result => child.Output.Add(PSObject.AsPSObject(result)), child.Error.Add);
                SetState(_cancel.IsCancellationRequested ? JobState.Stopped : report.IsFailure ? JobState.Failed : JobState.Completed);
            }
            catch (OperationCanceledException) when (_cancel.IsCancellationRequested)
            {
                if (_kind.CancelledErrorId is { } cancelled)
                    child.Error.Add(SleapErrors.Create(cancelled, ErrorCategory.OperationStopped, target,
                        "The job was stopped; the worker was told to stop it.", "Submit it again when you want the results."));
                SetState(JobState.Stopped);
            }
            catch (SleapRtcException ex)
            {
                child.Error.Add(SleapErrors.FromLibrary(ex, target));
                SetState(JobState.Failed);
            }
            catch (Exception ex)
            {
                // A job must end in a final state whatever happens; the error record carries what went wrong.
                child.Error.Add(new ErrorRecord(ex, _kind.FailedErrorId, ErrorCategory.NotSpecified, fallbackTarget));
                SetState(JobState.Failed);
            }
        });
    }

    /// <summary>The child first, so whoever waits on the parent finds the child's streams final.</summary>
    private void SetState(JobState state)
    {
        _child.SetState(state);
        SetJobState(state);
    }

    public override string StatusMessage => JobStateInfo.State.ToString();

    public override bool HasMoreData => _child.HasMoreData;

    public override string Location => Environment.MachineName;

    public override void StopJob()
    {
        if (IsFinished) return;
        SetState(JobState.Stopping);
        _cancel.Cancel();
        if (!_run.Wait(StopGrace)) SetState(JobState.Stopped);
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
        private readonly Job _job;
        private readonly string _source;
        public JobSink(Job job, string source) { _job = job; _source = source; }
        public void Progress(ProgressRecord record) => _job.Progress.Add(record);
        public void Verbose(string text) => _job.Verbose.Add(new VerboseRecord(text));
        public void Information(string text, bool showInHost) =>
            _job.Information.Add(new InformationRecord(text, _source));
    }
}

/// <summary>The child of a <see cref="TrainingJob"/>: the one run, whose streams Receive-Job reads.</summary>
public sealed class TrainingJobRun : Job
{
    internal TrainingJobRun(string command, TrainingJob.JobKind kind) : base(command, kind.Name)
    {
        PSJobTypeName = kind.TypeName;
    }

    internal void SetState(JobState state) => SetJobState(state);

    public override string StatusMessage => JobStateInfo.State.ToString();

    public override bool HasMoreData =>
        Output.Count > 0 || Error.Count > 0 || Progress.Count > 0 || Verbose.Count > 0 || Warning.Count > 0 || Information.Count > 0;

    public override string Location => Environment.MachineName;

    /// <summary>Stopping is the parent's business (Stop-Job on the parent cancels the work).</summary>
    public override void StopJob() { }
}
