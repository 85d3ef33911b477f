using System.Management.Automation;
using SleapRtc.Client.Credentials;
using SleapRtc.PowerShell.Infrastructure;
using SleapRtc.Client.Rooms;
using SleapRtc.PowerShell.Completion;
using SleapRtc.Protocol.Jobs;

namespace SleapRtc.PowerShell.Commands;

/// <summary>Creates a room on a signaling server and saves its credentials on this machine.</summary>
[Cmdlet(VerbsCommon.New, "SleapRoom", SupportsShouldProcess = true, HelpUri = ModuleLinks.Docs + "New-SleapRoom.md")]
[OutputType(typeof(Room))]
public sealed class NewSleapRoomCommand : SleapCmdlet
{
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(30);

    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("Url")]
    [ArgumentCompleter(typeof(ServerCompleter))]
    [ServerList]
    public string? Server { get; set; }

    [Parameter]
    [ValidatePattern("^[A-Za-z0-9._-]{1,64}$")]
    public string? Name { get; set; }

    [Parameter]
    public TimeSpan? ExpiresIn { get; set; }

    protected override void ProcessRecord()
    {
        if (ExpiresIn is { } ttl && ttl <= TimeSpan.Zero)
        {
            ThrowTerminatingError(SleapErrors.Create(ErrorIds.InvalidExpiresIn, ErrorCategory.InvalidArgument, ttl,
                "-ExpiresIn must be a positive duration.", "Pass for example -ExpiresIn ([timespan]::FromDays(7))."));
            return;
        }
        string server;
        Room room;
        try
        {
            server = RoomTarget.ServerForNewRoom(Server);
            if (!ShouldProcess(server, $"Create room{(Name is null ? "" : " '" + Name + "'")}")) return;
            room = RunOnBackground((_, token) => RoomAdministration.CreateAsync(server, Name, ExpiresIn, token), RequestTimeout);
        }
        catch (SleapRtcException ex)
        {
            ThrowTerminatingError(SleapErrors.FromLibrary(ex, Server));
            return;
        }
        catch (TimeoutException ex)
        {
            ThrowTerminatingError(SleapErrors.FromLibrary(new RoomRequestFailedException(RoomAdministration.CreateFailedId, "create a room",
                Server ?? "the signaling server", ex.Message, ex), Server));
            return;
        }

        ModuleData.Credentials().Save(new RoomCredentials
        {
            RoomId = room.RoomId, Token = room.Token, Server = room.Server, Name = room.Name, ExpiresAt = room.ExpiresAt,
        });
        RoomTarget.RememberCreated(room.RoomId);
        WriteVerbose($"Room {room.RoomId} created on {room.Server}; credentials saved in {ModuleData.DataDirectory()}.");
        WriteObject(room);
    }
}
