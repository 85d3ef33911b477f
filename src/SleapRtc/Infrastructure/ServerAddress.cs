using SleapRtc.Client.Credentials;

namespace SleapRtc.PowerShell.Infrastructure;

/// <summary>Which signaling server a room command talks to, when the user did not say.</summary>
internal static class ServerAddress
{
    /// <summary>
    /// -Server, then the server saved with the room, then SLEAP_RTC_SIGNALING_URL (and the classic WS/HTTP variables),
    /// then the oldest server started in this session. Null when none of them exists.
    /// </summary>
    public static string? Resolve(string? explicitServer, string? roomId)
    {
        if (!string.IsNullOrWhiteSpace(explicitServer)) return explicitServer.Trim();
        if (!string.IsNullOrWhiteSpace(roomId) && ModuleData.Credentials().Get(roomId!)?.Server is { Length: > 0 } saved) return saved;
        if (CredentialResolver.ServerFromEnvironment() is { } fromEnvironment) return fromEnvironment;
        return RunningServer.OfThisSession().FirstOrDefault()?.LocalUrl;
    }
}
