using System.Management.Automation;
using SleapRtc.Client.Credentials;
using SleapRtc.PowerShell.Infrastructure;
using SleapRtc.Signaling.Client;

namespace SleapRtc.PowerShell.Commands;

/// <summary>Creates a room on a signaling server and saves its credentials on this machine.</summary>
[Cmdlet(VerbsCommon.New, "SleapRoom", SupportsShouldProcess = true)]
[OutputType(typeof(Room))]
public sealed class NewSleapRoomCommand : SleapCmdlet
{
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(30);

    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("Url")]
    public string? Server { get; set; }

    [Parameter]
    [ValidatePattern("^[A-Za-z0-9._-]{1,64}$")]
    public string? Name { get; set; }

    [Parameter]
    public TimeSpan? ExpiresIn { get; set; }

    protected override void ProcessRecord()
    {
        var server = ServerAddress.Resolve(Server, roomId: null);
        if (server is null)
        {
            ThrowTerminatingError(SleapErrors.MissingServer());
            return;
        }
        if (ExpiresIn is { } ttl && ttl <= TimeSpan.Zero)
        {
            ThrowTerminatingError(SleapErrors.Create(ErrorIds.InvalidExpiresIn, ErrorCategory.InvalidArgument, ttl,
                "-ExpiresIn must be a positive duration.", "Pass for example -ExpiresIn ([timespan]::FromDays(7))."));
            return;
        }
        if (!ShouldProcess(server, $"Create room{(Name is null ? "" : " '" + Name + "'")}")) return;

        SignalingClient client;
        try { client = new SignalingClient(server); }
        catch (FormatException ex)
        {
            ThrowTerminatingError(SleapErrors.InvalidServerAddress(server, ex));
            return;
        }

        Room room;
        try
        {
            room = RunOnBackground(async (_, token) =>
            {
                await using (client.ConfigureAwait(false))
                    return await client.CreateRoomAsync(Name, ExpiresIn, token).ConfigureAwait(false);
            }, RequestTimeout);
        }
        catch (Exception ex) when (ex is SignalingException or TimeoutException)
        {
            ThrowTerminatingError(SleapErrors.Create(ErrorIds.RoomCreateFailed, ErrorCategory.ConnectionError, server,
                $"Could not create a room on {server}: {ex.Message}",
                "Check that the signaling server runs and is reachable (-Server or SLEAP_RTC_SIGNALING_URL).", ex));
            return;
        }

        ModuleData.Credentials().Save(new RoomCredentials
        {
            RoomId = room.RoomId, Token = room.Token, Server = room.Server, Name = room.Name, ExpiresAt = room.ExpiresAt,
        });
        WriteVerbose($"Room {room.RoomId} created on {room.Server}; credentials saved in {ModuleData.DataDirectory()}.");
        WriteObject(room);
    }
}
