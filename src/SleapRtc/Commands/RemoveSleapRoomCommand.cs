using System.Management.Automation;
using SleapRtc.Client.Credentials;
using SleapRtc.PowerShell.Completion;
using SleapRtc.PowerShell.Infrastructure;
using SleapRtc.Protocol.Jobs;
using SleapRtc.Client.Rooms;

namespace SleapRtc.PowerShell.Commands;

/// <summary>Deletes a room on its server (disconnecting its peers) and forgets its saved credentials.</summary>
/// <remarks>ConfirmImpact High: deleting a room disconnects every worker in it, so it asks first unless -Confirm:$false.</remarks>
[Cmdlet(VerbsCommon.Remove, "SleapRoom", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, HelpUri = ModuleLinks.Docs + "Remove-SleapRoom.md")]
public sealed class RemoveSleapRoomCommand : SleapCmdlet
{
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(30);

    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(RoomIdCompleter))]
    public string RoomId { get; set; } = "";

    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? Token { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(ServerCompleter))]
    [ServerList]
    public string? Server { get; set; }

    protected override void ProcessRecord()
    {
        ResolvedRoom room;
        try { room = RoomTarget.Resolve(RoomId, Token, Server); }
        catch (SleapRtcException ex)
        {
            WriteError(SleapErrors.FromLibrary(ex, RoomId));
            return;
        }
        if (!ShouldProcess($"room {room.RoomId} on {room.Server}", "Delete the room and disconnect its workers")) return;

        try
        {
            RunOnBackground((_, token) => RoomAdministration.DeleteAsync(room, token), RequestTimeout);
        }
        catch (RoomNotFoundException ex)
        {
            // Already gone on the server: forgetting the saved credentials is still what the user wants.
            Forget(room.RoomId);
            WriteError(SleapErrors.FromLibrary(new SleapRtcException(ex.ErrorId, ex.Kind, ex.Message.TrimEnd('.') + "; its saved credentials were removed.",
                "Nothing to do; create a new room with New-SleapRoom if you need one."), RoomId));
            return;
        }
        catch (SleapRtcException ex)
        {
            WriteError(SleapErrors.FromLibrary(ex, RoomId));
            return;
        }
        catch (TimeoutException ex)
        {
            WriteError(SleapErrors.FromLibrary(new RoomRequestFailedException(RoomAdministration.RemoveFailedId, $"delete room '{room.RoomId}'",
                room.Server!, ex.Message, ex), RoomId));
            return;
        }
        Forget(room.RoomId);
        WriteVerbose($"Room {room.RoomId} deleted on {room.Server}.");
    }

    private static void Forget(string roomId)
    {
        ModuleData.Credentials().Remove(roomId);
        SessionRegistry.Current.ForgetRoom(roomId);
    }
}
