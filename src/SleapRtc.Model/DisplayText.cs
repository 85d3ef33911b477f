namespace SleapRtc;

/// <summary>
/// How identifiers and secrets are shown to people: format views, banners and messages use these so a token is
/// masked the same way everywhere and a peer id is shortened the same way everywhere.
/// </summary>
public static class DisplayText
{
    private const string Mask = "********";
    private const int ShortPeerIdLength = 8;

    /// <summary>The first four characters of a token, enough to tell rooms apart without revealing it.</summary>
    public static string MaskToken(string? token) =>
        token is null || token.Length <= 4 ? "****" : token.Substring(0, 4) + Mask;

    /// <summary>A session string carries the room token, so none of its payload is shown.</summary>
    public static string MaskSessionString(string? sessionString)
    {
        const string prefix = "sleap-session:";
        return sessionString is not null && sessionString.StartsWith(prefix, StringComparison.Ordinal) ? prefix + Mask : Mask;
    }

    /// <summary>
    /// The first 8 hex digits of a UUID peer id (as the server issues them), enough to tell a room's workers apart
    /// in an 80-column table; a readable peer id (a name a peer chose) is shown whole. The objects keep the full id.
    /// </summary>
    public static string ShortPeerId(string? peerId)
    {
        if (peerId is null) return "";
        return Guid.TryParse(peerId, out _) && peerId.Length >= ShortPeerIdLength ? peerId.Substring(0, ShortPeerIdLength) : peerId;
    }
}
