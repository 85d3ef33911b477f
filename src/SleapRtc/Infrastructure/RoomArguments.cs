using System.Management.Automation;
using SleapRtc.Client.Credentials;
using SleapRtc.Protocol.Jobs;

namespace SleapRtc.PowerShell.Infrastructure;

/// <summary>
/// The room a listing cmdlet (Get-SleapWorker, Get-SleapSpace) reads: explicit parameters, saved credentials,
/// environment, then a server of this session. Failures become the cmdlet's non-terminating errors.
/// </summary>
internal static class RoomArguments
{
    /// <returns>The room, or null after writing the error that says why there is none.</returns>
    public static ResolvedRoom? Resolve(PSCmdlet cmdlet, string? roomId, string? token, string? server, string? sessionString)
    {
        ResolvedRoom room;
        try
        {
            room = CredentialResolver.Resolve(roomId, token, server, sessionString, ModuleData.Credentials());
        }
        catch (SleapRtcException ex)
        {
            cmdlet.WriteError(SleapErrors.FromLibrary(ex, roomId));
            return null;
        }
        catch (FormatException ex)
        {
            cmdlet.WriteError(SleapErrors.InvalidSessionString(sessionString ?? "", ex));
            return null;
        }
        if (room.Server is not null) return room;
        var sessionServer = RunningServer.OfThisSession().FirstOrDefault()?.LocalUrl;
        if (sessionServer is null)
        {
            cmdlet.WriteError(SleapErrors.MissingServer());
            return null;
        }
        return new ResolvedRoom { RoomId = room.RoomId, Token = room.Token, Server = sessionServer, WorkerPeerId = room.WorkerPeerId, Source = room.Source };
    }
}
