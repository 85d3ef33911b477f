using System.Management.Automation;
using SleapRtc.Client.Discovery;
using SleapRtc.PowerShell.Infrastructure;
using SleapRtc.Protocol.Jobs;

namespace SleapRtc.PowerShell.Commands;

/// <summary>Lists the inference spaces of a room: name, serving worker, state and queue length.</summary>
[Cmdlet(VerbsCommon.Get, "SleapSpace", HelpUri = ModuleLinks.Docs + "Get-SleapSpace.md")]
[OutputType(typeof(SpaceInfo))]
public sealed class GetSleapSpaceCommand : RoomCmdlet
{
    private static readonly TimeSpan ListTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Only this space (exact name).</summary>
    [Parameter(Position = 0)]
    [ValidateNotNullOrEmpty]
    public string? Name { get; set; }

    protected override void ProcessRecord()
    {
        if (ResolveRoom(errorTarget: null) is not { } room) return;
        try
        {
            var spaces = RunOnBackground((_, ct) => SpaceDiscovery.ListAsync(room, Name, new ClientConnectionOptions(), ct), ListTimeout);
            foreach (var space in spaces) WriteObject(space);
        }
        catch (SleapRtcException ex)
        {
            WriteError(SleapErrors.FromLibrary(ex, room.RoomId));
        }
        catch (TimeoutException ex)
        {
            WriteError(SleapErrors.Create(ErrorIds.OperationTimedOut, ErrorCategory.OperationTimeout, room.RoomId,
                $"Listing the spaces of room {room.RoomId} did not finish within {ListTimeout.TotalSeconds} s.",
                "Check that the signaling server is reachable and try again.", ex));
        }
    }
}
