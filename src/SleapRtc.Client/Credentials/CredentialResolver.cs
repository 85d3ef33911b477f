using SleapRtc.Protocol;
using SleapRtc.Protocol.Jobs;

namespace SleapRtc.Client.Credentials;

/// <summary>Where the room credentials came from (shown in verbose output, never the token itself).</summary>
public enum CredentialSource { SessionString, Explicit, Saved, Environment }

/// <summary>The room, token, server and (for a session string) target worker a command will use.</summary>
public sealed class ResolvedRoom
{
    public required string RoomId { get; init; }
    public required string Token { get; init; }
    public string? Server { get; init; }
    /// <summary>The worker a session string points at; null for room discovery.</summary>
    public string? WorkerPeerId { get; init; }
    /// <summary>The extension version the session string's worker printed (0 when none): what that worker is, told
    /// beside the server rather than through it.</summary>
    public int WorkerExtensionVersion { get; init; }
    public CredentialSource Source { get; init; }

    /// <summary>The same room through <paramref name="server"/> (when nothing named one and the caller knows a default).</summary>
    public ResolvedRoom WithServer(string server) =>
        new() { RoomId = RoomId, Token = Token, Server = server, WorkerPeerId = WorkerPeerId, WorkerExtensionVersion = WorkerExtensionVersion, Source = Source };
}

/// <summary>
/// Credentials resolution shared by every command: a session string, else explicit room id + token, else
/// the saved credentials for that room id, else SLEAP_RTC_ROOM_ID / SLEAP_RTC_ROOM_TOKEN. The server: explicit,
/// else the session string's, else the saved one for the room, else SLEAP_RTC_SIGNALING_URL, then upstream's
/// SLEAP_RTC_SIGNALING_WS and SLEAP_RTC_SIGNALING_HTTP.
/// </summary>
public static class CredentialResolver
{
    public const string RoomIdVariable = "SLEAP_RTC_ROOM_ID";
    public const string RoomTokenVariable = "SLEAP_RTC_ROOM_TOKEN";
    public const string ServerVariable = "SLEAP_RTC_SIGNALING_URL";
    public const string UpstreamWsVariable = "SLEAP_RTC_SIGNALING_WS";
    public const string UpstreamHttpVariable = "SLEAP_RTC_SIGNALING_HTTP";

    /// <exception cref="MissingCredentialsException">Nothing names a room, or a room id has no token anywhere.</exception>
    /// <exception cref="FormatException">The session string is invalid.</exception>
    public static ResolvedRoom Resolve(string? roomId, string? token, string? server, string? sessionString, CredentialStore? store)
    {
        if (!string.IsNullOrWhiteSpace(sessionString))
        {
            var session = SessionString.Decode(sessionString!);
            var savedForSession = store?.Get(session.RoomId);
            return new ResolvedRoom
            {
                RoomId = session.RoomId,
                Token = session.Token,
                WorkerPeerId = string.IsNullOrEmpty(session.PeerId) ? null : session.PeerId,
                WorkerExtensionVersion = session.ExtensionVersion,
                Server = FirstNonEmpty(server, session.Server, savedForSession?.Server) ?? ServerFromEnvironment(),
                Source = CredentialSource.SessionString,
            };
        }

        var source = CredentialSource.Explicit;
        if (string.IsNullOrWhiteSpace(roomId))
        {
            roomId = Environment.GetEnvironmentVariable(RoomIdVariable);
            source = CredentialSource.Environment;
            if (string.IsNullOrWhiteSpace(roomId))
                throw new MissingCredentialsException("no -SessionString, no -RoomId and no SLEAP_RTC_ROOM_ID");
            if (string.IsNullOrEmpty(token)) token = Environment.GetEnvironmentVariable(RoomTokenVariable);
        }

        var saved = store?.Get(roomId!);
        if (string.IsNullOrEmpty(token))
        {
            token = saved?.Token;
            if (!string.IsNullOrEmpty(token)) source = CredentialSource.Saved;
        }
        if (string.IsNullOrEmpty(token) && source == CredentialSource.Explicit
            && Environment.GetEnvironmentVariable(RoomIdVariable) == roomId)
        {
            token = Environment.GetEnvironmentVariable(RoomTokenVariable);
            source = CredentialSource.Environment;
        }
        if (string.IsNullOrEmpty(token))
            throw new MissingCredentialsException($"room '{roomId}' has no token (none given, none saved, SLEAP_RTC_ROOM_TOKEN not set)");

        return new ResolvedRoom
        {
            RoomId = roomId!,
            Token = token!,
            Server = FirstNonEmpty(server, saved?.Server) ?? ServerFromEnvironment(),
            Source = source,
        };
    }

    /// <summary>SLEAP_RTC_SIGNALING_URL, then upstream's WS and HTTP variables; null when none is set.</summary>
    public static string? ServerFromEnvironment() =>
        FirstNonEmpty(
            Environment.GetEnvironmentVariable(ServerVariable),
            Environment.GetEnvironmentVariable(UpstreamWsVariable),
            Environment.GetEnvironmentVariable(UpstreamHttpVariable));

    private static string? FirstNonEmpty(params string?[] values) => values.FirstOrDefault(v => !string.IsNullOrWhiteSpace(v))?.Trim();
}
