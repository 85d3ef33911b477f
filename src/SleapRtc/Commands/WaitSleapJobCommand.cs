using System.Management.Automation;
using SleapRtc.Client.Jobs;
using SleapRtc.PowerShell.Infrastructure;

namespace SleapRtc.PowerShell.Commands;

/// <summary>Waits until a job has finished (Succeeded, Failed or Cancelled), showing its progress, and returns it.</summary>
[Cmdlet(VerbsLifecycle.Wait, "SleapJob", HelpUri = ModuleLinks.Docs + "Wait-SleapJob.md")]
[OutputType(typeof(JobInfo))]
public sealed class WaitSleapJobCommand : RoomJobCmdlet
{
    private const int ActivityId = 4713;
    private const string Activity = "Wait-SleapJob";

    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidatePattern(GetSleapJobCommand.JobIdPattern)]
    public string JobId { get; set; } = "";

    /// <summary>Seconds to wait at most; -1 (the default) waits as long as the job takes.</summary>
    [Parameter]
    [ValidateRange(-1, int.MaxValue)]
    public int Timeout { get; set; } = -1;

    protected override void ProcessRecord()
    {
        if (ResolveRoom(JobId) is not { } room) return;
        var limit = Timeout < 0 ? System.Threading.Timeout.InfiniteTimeSpan : TimeSpan.FromSeconds(Timeout);
        var waited = TryWithJobs(room, JobId, (jobs, queue, ct) =>
            jobs.WaitAsync(JobId, limit, RoomJobs.DefaultPollInterval, job => queue.WriteProgress(Progress(job)), ct), timeout: null, out var finished);
        WriteProgress(new ProgressRecord(ActivityId, Activity, "Done") { RecordType = ProgressRecordType.Completed });
        if (waited) WriteObject(finished);
    }

    private ProgressRecord Progress(JobInfo job)
    {
        var record = new ProgressRecord(ActivityId, $"{Activity} {job.JobId}", job.State)
        {
            CurrentOperation = job.Position is { } position ? $"queued, position {position}"
                : job.EpochCount > 0 ? $"{job.ConfigName} epoch {job.Epoch} of {job.EpochCount}" + (job.Loss is { } loss ? $", loss {loss:G4}" : "")
                : job.WorkerId is null ? "waiting" : $"on worker {job.WorkerId}",
        };
        if (job.EpochCount > 0) record.PercentComplete = Math.Min(100, job.Epoch * 100 / job.EpochCount);
        return record;
    }
}
