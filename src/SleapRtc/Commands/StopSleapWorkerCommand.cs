using System.Management.Automation;
using SleapRtc.PowerShell.Completion;
using SleapRtc.PowerShell.Infrastructure;

namespace SleapRtc.PowerShell.Commands;

/// <summary>Stops workers started in this session: the running job ends and the worker leaves its room.</summary>
[Cmdlet(VerbsLifecycle.Stop, "SleapWorker", SupportsShouldProcess = true, HelpUri = ModuleLinks.Docs + "Stop-SleapWorker.md")]
[OutputType(typeof(WorkerSession))]
public sealed class StopSleapWorkerCommand : SleapCmdlet
{
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(40);

    /// <summary>Peer ids; WorkerSession and WorkerInfo objects bind through their PeerId property.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("WorkerId")]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(WorkerIdCompleter))]
    public string[] PeerId { get; set; } = Array.Empty<string>();

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        foreach (var peerId in PeerId)
        {
            var worker = RunningWorker.OfThisSession().FirstOrDefault(w => w.Session.PeerId == peerId);
            if (worker is null)
            {
                WriteError(SleapErrors.Create(ErrorIds.WorkerNotRunningHere, ErrorCategory.ObjectNotFound, peerId,
                    $"No worker with peer id '{peerId}' runs in this session.",
                    "List this session's workers with Get-SleapWorker -Local; workers on other machines are stopped there."));
                continue;
            }
            if (!ShouldProcess($"worker {peerId} in room {worker.Session.RoomId}", "Stop worker")) continue;
            RunOnBackground((_, ct) => worker.StopAsync().WaitAsync(ct), StopTimeout);
            SessionRegistry.Current.Remove(worker);
            if (PassThru) WriteObject(worker.Session);
        }
    }
}
