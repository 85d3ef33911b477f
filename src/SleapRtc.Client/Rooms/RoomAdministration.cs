using SleapRtc.Client.Credentials;
using SleapRtc.Protocol.Jobs;
using SleapRtc.Signaling.Client;

namespace SleapRtc.Client.Rooms;

/// <summary>
/// Creating and deleting rooms over the server's HTTP endpoints, with the server's answers turned into the
/// library's errors (wrong token, unknown room, unreachable server) so callers never read HTTP status codes.
/// </summary>
public static class RoomAdministration
{
    public const string CreateFailedId = "RoomCreateFailed";
    public const string RemoveFailedId = "RoomRemoveFailed";

    /// <exception cref="InvalidServerAddressException">The server address cannot be parsed.</exception>
    /// <exception cref="RoomRequestFailedException">The server cannot be reached or refused.</exception>
    public static async Task<Room> CreateAsync(string server, string? name, TimeSpan? expiresIn, CancellationToken cancellationToken)
    {
        await using var client = Connect(server);
        try
        {
            return await client.CreateRoomAsync(name, expiresIn, cancellationToken).ConfigureAwait(false);
        }
        catch (SignalingException e)
        {
            throw new RoomRequestFailedException(CreateFailedId, "create a room", server, e.Message, e);
        }
    }

    /// <summary>Disconnects every peer of the room and deletes it.</summary>
    /// <exception cref="InvalidRoomCredentialsException">The token is wrong.</exception>
    /// <exception cref="RoomNotFoundException">The room does not exist (any more) on the server.</exception>
    /// <exception cref="RoomRequestFailedException">The server cannot be reached or refused for another reason.</exception>
    public static async Task DeleteAsync(ResolvedRoom room, CancellationToken cancellationToken)
    {
        var server = room.Server ?? throw new ServerNotSpecifiedException();
        await using var client = Connect(server);
        try
        {
            await client.DeleteRoomAsync(room.RoomId, room.Token, cancellationToken).ConfigureAwait(false);
        }
        catch (SignalingException e) when (e.Code is "HTTP_401" or "HTTP_403")
        {
            throw new InvalidRoomCredentialsException(room.RoomId, e.Reason ?? "Invalid token");
        }
        catch (SignalingException e) when (e.Code is "HTTP_404")
        {
            throw new RoomNotFoundException(room.RoomId, server);
        }
        catch (SignalingException e)
        {
            throw new RoomRequestFailedException(RemoveFailedId, $"delete room '{room.RoomId}'", server, e.Message, e);
        }
    }

    private static SignalingClient Connect(string server)
    {
        try { return new SignalingClient(server); }
        catch (FormatException e) { throw new InvalidServerAddressException(server, e.Message, e); }
    }
}
