using System.Management.Automation;
using SleapRtc.Client.Credentials;
using SleapRtc.Client.Diagnostics;
using SleapRtc.PowerShell.Completion;
using SleapRtc.PowerShell.Infrastructure;
using SleapRtc.Protocol.Jobs;

namespace SleapRtc.PowerShell.Commands;

/// <summary>
/// Pre-flight check of a room's network path: the signaling server and its latency, this machine's addresses as the
/// server's STUN sees them, TURN, and a short round trip to a worker with the path that carried it.
/// </summary>
[Cmdlet(VerbsDiagnostic.Test, "SleapConnection", HelpUri = ModuleLinks.Docs + "Test-SleapConnection.md")]
[OutputType(typeof(ConnectionTestResult), typeof(bool))]
public sealed class TestSleapConnectionCommand : WorkerTargetCmdlet
{
    private static readonly TimeSpan TestTimeout = TimeSpan.FromSeconds(90);
    private const int ActivityId = 4713;

    /// <summary>
    /// The worker to reach (peer id); a session string names one too. Declared again only to keep refusing an empty id,
    /// as this cmdlet always has (a submission's -WorkerId lets $null through as "not given").
    /// </summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(WorkerIdCompleter))]
    public override string? WorkerId { get => base.WorkerId; set => base.WorkerId = value; }

    /// <summary>Return only $true (every step passed or had nothing to test) or $false.</summary>
    [Parameter]
    public SwitchParameter Quiet { get; set; }

    protected override void ProcessRecord()
    {
        ResolvedRoom room;
        try { room = ResolveWorkerRoom(); }
        catch (SleapRtcException ex)
        {
            if (Quiet) WriteObject(false);
            else WriteError(SleapErrors.FromLibrary(ex, RoomId));
            return;
        }
        var workerId = WorkerId ?? Worker?.PeerId ?? room.WorkerPeerId;
        var options = new ConnectionTestOptions
        {
            PeerConnectionFactory = PeerConnectionDefaults.Factory,
            PeerConnection = PeerConnectionDefaults.Options(),
        };
        ConnectionTestResult result;
        try
        {
            result = RunOnBackground((queue, ct) =>
            {
                queue.WriteProgress(new ProgressRecord(ActivityId, $"Testing the connection to {room.Server}", "server, STUN, TURN" + (workerId is null ? "" : ", worker " + workerId)));
                return ConnectionTest.RunAsync(room, workerId, options, ct);
            }, TestTimeout);
        }
        catch (TimeoutException ex)
        {
            if (Quiet) { WriteObject(false); return; }
            WriteError(SleapErrors.Create(ErrorIds.OperationTimedOut, ErrorCategory.OperationTimeout, room.RoomId,
                $"The connection test did not finish within {TestTimeout.TotalSeconds} s.", "Check that the signaling server is reachable and try again.", ex));
            return;
        }
        finally
        {
            WriteProgress(new ProgressRecord(ActivityId, "Testing the connection", "done") { RecordType = ProgressRecordType.Completed });
        }
        WriteObject(Quiet ? result.Succeeded : result);
    }
}
