using System.Management.Automation;
using SleapRtc.PowerShell.Infrastructure;

namespace SleapRtc.PowerShell.Commands;

/// <summary>
/// Cancels a queued job at once, or asks the worker to stop a running one; -KeepCheckpoint stops it early and keeps the
/// best checkpoint so far as its result (Receive-SleapJob collects it), as the classic GUI's stop button did.
/// </summary>
[Cmdlet(VerbsLifecycle.Stop, "SleapJob", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium, HelpUri = ModuleLinks.Docs + "Stop-SleapJob.md")]
[OutputType(typeof(JobInfo))]
public sealed class StopSleapJobCommand : RoomJobCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidatePattern(GetSleapJobCommand.JobIdPattern)]
    public string JobId { get; set; } = "";

    [Parameter]
    public SwitchParameter KeepCheckpoint { get; set; }

    /// <summary>Writes the job's record as the server has it after the request.</summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        if (ResolveRoom(JobId) is not { } room) return;
        var action = KeepCheckpoint ? "Stop the job early and keep its best checkpoint" : "Cancel the job";
        if (!ShouldProcess($"job {JobId} in room {room.RoomId}", action)) return;
        if (!TryWithJobs(room, JobId, (jobs, _, ct) => jobs.CancelAsync(JobId, KeepCheckpoint, ct), RequestTimeout, out var job)) return;
        WriteVerbose($"Job {job.JobId} is {job.State}" + (job.IsFinished ? "." : "; its worker was asked to stop it."));
        if (PassThru) WriteObject(job);
    }
}
