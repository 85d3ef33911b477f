using System.Management.Automation;
using SleapRtc.Client.Credentials;
using SleapRtc.PowerShell.Completion;
using SleapRtc.PowerShell.Infrastructure;
using SleapRtc.Protocol.Jobs;
using SleapRtc.Signaling.Client;

namespace SleapRtc.PowerShell.Commands;

/// <summary>Deletes a room on its server (disconnecting its peers) and forgets its saved credentials.</summary>
[Cmdlet(VerbsCommon.Remove, "SleapRoom", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
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
    public string? Server { get; set; }

    protected override void ProcessRecord()
    {
        var store = ModuleData.Credentials();
        ResolvedRoom room;
        try { room = CredentialResolver.Resolve(RoomId, Token, Server, null, store); }
        catch (MissingCredentialsException ex)
        {
            WriteError(SleapErrors.FromLibrary(ex, RoomId));
            return;
        }
        var server = room.Server ?? ServerAddress.Resolve(null, RoomId);
        if (server is null)
        {
            WriteError(SleapErrors.MissingServer());
            return;
        }
        if (!ShouldProcess($"room {room.RoomId} on {server}", "Delete the room and disconnect its workers")) return;

        SignalingClient client;
        try { client = new SignalingClient(server); }
        catch (FormatException ex)
        {
            WriteError(SleapErrors.InvalidServerAddress(server, ex));
            return;
        }
        try
        {
            RunOnBackground(async (_, token) =>
            {
                await using (client.ConfigureAwait(false))
                    await client.DeleteRoomAsync(room.RoomId, room.Token, token).ConfigureAwait(false);
            }, RequestTimeout);
        }
        catch (SignalingException ex) when (ex.Code is "HTTP_401" or "HTTP_403")
        {
            WriteError(SleapErrors.FromLibrary(new InvalidRoomCredentialsException(room.RoomId, ex.Reason ?? "Invalid token"), RoomId));
            return;
        }
        catch (SignalingException ex) when (ex.Code is "HTTP_404")
        {
            // Already gone on the server: forgetting the saved credentials is still what the user wants.
            store.Remove(room.RoomId);
            WriteError(SleapErrors.Create(ErrorIds.RoomNotFound, ErrorCategory.ObjectNotFound, RoomId,
                $"Room '{room.RoomId}' does not exist on {server} (it may have expired); its saved credentials were removed.",
                "Nothing to do; create a new room with New-SleapRoom if you need one."));
            return;
        }
        catch (Exception ex) when (ex is SignalingException or TimeoutException)
        {
            WriteError(SleapErrors.Create(ErrorIds.RoomRemoveFailed, ErrorCategory.ConnectionError, RoomId,
                $"Could not delete room '{room.RoomId}' on {server}: {ex.Message}",
                "Check that the signaling server runs and is reachable (-Server or SLEAP_RTC_SIGNALING_URL).", ex));
            return;
        }
        store.Remove(room.RoomId);
        WriteVerbose($"Room {room.RoomId} deleted on {server}.");
    }
}
