using System.Management.Automation;
using SleapRtc.PowerShell.Infrastructure;
using SleapRtc.Protocol.Signaling;

namespace SleapRtc.PowerShell.Commands;

/// <summary>Lists a room's jobs as the signaling server records them (queued, running and finished), newest first.</summary>
[Cmdlet(VerbsCommon.Get, "SleapJob", HelpUri = ModuleLinks.Docs + "Get-SleapJob.md")]
[OutputType(typeof(JobInfo))]
public sealed class GetSleapJobCommand : RoomJobCmdlet
{
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidatePattern(JobIdPattern)]
    public string? JobId { get; set; }

    /// <summary>Only jobs in this state (finished ones are included unless it narrows the list).</summary>
    [Parameter]
    [ValidateSet(JobStates.Queued, JobStates.Uploading, JobStates.Running, JobStates.Succeeded, JobStates.Failed, JobStates.Cancelled)]
    public string? State { get; set; }

    /// <summary>The shape of our job ids, so a typo fails before anything connects.</summary>
    internal const string JobIdPattern = Protocol.Signaling.JobIds.Pattern;

    protected override void ProcessRecord()
    {
        if (ResolveRoom(JobId) is not { } room) return;
        if (!TryWithJobs(room, JobId ?? room.RoomId, (jobs, _, ct) => jobs.ListAsync(JobId, State, ct), RequestTimeout, out var found)) return;
        if (JobId is not null && found.Count == 0)
        {
            WriteError(SleapErrors.FromLibrary(new Client.Jobs.JobNotFoundException(JobId, room.RoomId), JobId));
            return;
        }
        foreach (var job in found) WriteObject(job);
    }
}
