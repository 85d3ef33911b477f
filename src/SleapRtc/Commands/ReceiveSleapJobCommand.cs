using System.Management.Automation;
using SleapRtc.Client.Jobs;
using SleapRtc.PowerShell.Infrastructure;
using SleapRtc.Protocol.Jobs;

namespace SleapRtc.PowerShell.Commands;

/// <summary>
/// Downloads a finished job's results from the worker that keeps them, from any machine with the room's credentials,
/// into a folder of its own under -OutputPath, and returns them as a TrainingResult.
/// </summary>
[Cmdlet(VerbsCommunications.Receive, "SleapJob", HelpUri = ModuleLinks.Docs + "Receive-SleapJob.md")]
[OutputType(typeof(TrainingResult))]
public sealed class ReceiveSleapJobCommand : RoomJobCmdlet
{
    private const int ActivityId = 4714;
    private const string Activity = "Receive-SleapJob";

    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidatePattern(GetSleapJobCommand.JobIdPattern)]
    public string JobId { get; set; } = "";

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? OutputPath { get; set; }

    protected override void ProcessRecord()
    {
        var outputPath = GetUnresolvedProviderPathFromPSPath(OutputPath ?? ".");
        if (ResolveRoom(JobId) is not { } room) return;
        var options = new WorkerChannelOptions
        {
            PeerConnectionFactory = PeerConnectionDefaults.Factory,
            PeerConnection = PeerConnectionDefaults.Options(),
        };
        WriteProgress(new ProgressRecord(ActivityId, Activity, "Collecting") { CurrentOperation = $"job {JobId}" });
        try
        {
            var result = RunOnBackground((queue, ct) =>
            {
                var receiver = new JobReceiver(room, options);
                receiver.StatusMessage += queue.WriteVerbose;
                receiver.ProgressChanged += p => queue.WriteProgress(SubmissionPlan.ToRecord(p, ActivityId, Activity));
                return receiver.ReceiveAsync(JobId, outputPath, ct);
            });
            WriteObject(result);
        }
        catch (SleapRtcException ex)
        {
            WriteError(SleapErrors.FromLibrary(ex, ex is OutputPathNotWritableException ? OutputPath : JobId));
        }
        finally
        {
            WriteProgress(new ProgressRecord(ActivityId, Activity, "Done") { RecordType = ProgressRecordType.Completed });
        }
    }
}
