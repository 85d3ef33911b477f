using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using SleapRtc.Protocol.Signaling;
using SleapRtc.Signaling.Store;

namespace SleapRtc.Signaling.Server;

/// <summary>The one check of a room token (register, the HTTP API, the monitor).</summary>
internal static class RoomTokens
{
    /// <summary>Compared with when the room does not exist, so an unknown room costs the same work as a wrong token.</summary>
    private static readonly byte[] NoRoom = SHA256.HashData(RandomNumberGenerator.GetBytes(32));

    /// <summary>The HTTP status of the one answer to a room token that does not open the room, whether the room
    /// exists or not (the HTTP API and the monitor alike; a missing token is 401).</summary>
    public const int RefusalStatus = 403;

    /// <summary>The body of that answer, <c>{"detail":"Invalid token"}</c>: the reason <c>register</c> gives too.</summary>
    public static JsonObject RefusalBody() => new() { ["detail"] = RegistrationReasons.InvalidToken };

    /// <summary>True when <paramref name="presented"/> is the token of <paramref name="room"/> (false for no room).
    /// Constant time: both sides are hashed first, so neither the content nor the length of the token leaks.</summary>
    public static bool Opens(RoomRecord? room, string? presented) => Matches(room?.Token, presented);

    /// <summary>The same comparison for a token looked up elsewhere (null when there is no such room).</summary>
    public static bool Matches(string? expected, string? presented)
    {
        var given = SHA256.HashData(Encoding.UTF8.GetBytes(presented ?? ""));
        var wanted = expected is null ? NoRoom : SHA256.HashData(Encoding.UTF8.GetBytes(expected));
        return CryptographicOperations.FixedTimeEquals(wanted, given) && expected is not null && presented is not null;
    }
}
