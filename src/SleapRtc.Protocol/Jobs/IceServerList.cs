using System.Text.Json.Nodes;

namespace SleapRtc.Protocol.Jobs;

/// <summary>
/// Reads registered_auth's "ice_servers" — the RTCIceServer form, [{"urls": [...] or "url": ..., "username", "credential"}] —
/// into typed entries: STUN entries and TURN entries with their credentials.
/// </summary>
public static class IceServerList
{
    public static IReadOnlyList<IceServerEntry> Parse(JsonArray iceServers)
    {
        var servers = new List<IceServerEntry>();
        foreach (var server in iceServers.OfType<JsonObject>())
        {
            var node = server["urls"] ?? server["url"];
            var urls = (node is JsonArray array ? array.Select(n => n is JsonValue v && v.TryGetValue<string>(out var s) ? s : null) : new[] { StringOf(node) })
                .OfType<string>()
                .Where(u => IsStunUrl(u) || IsTurnUrl(u))
                .ToArray();
            if (urls.Length == 0) continue;
            servers.Add(new IceServerEntry(urls, StringOf(server["username"]), StringOf(server["credential"])));
        }
        return servers;
    }

    /// <summary>The TURN entries alone, with their credentials (STUN URLs are taken separately, so that a caller's own STUN list can replace the server's).</summary>
    public static IReadOnlyList<IceServerEntry> TurnServers(JsonArray iceServers) =>
        Parse(iceServers).Select(s => s with { Urls = s.Urls.Where(IsTurnUrl).ToArray() })
            .Where(s => s.Urls.Count > 0).ToArray();

    /// <summary>The STUN URLs alone.</summary>
    public static IReadOnlyList<string> StunUrls(JsonArray iceServers) =>
        Parse(iceServers).SelectMany(s => s.Urls).Where(IsStunUrl).ToArray();

    private static bool IsStunUrl(string url) => url.StartsWith("stun:", StringComparison.OrdinalIgnoreCase);

    // The URI schemes of RFC 7065 (the transport's TurnServerUrl parses the rest); the wire format needs no more to sort entries.
    private static bool IsTurnUrl(string url) =>
        url.StartsWith("turn:", StringComparison.OrdinalIgnoreCase) || url.StartsWith("turns:", StringComparison.OrdinalIgnoreCase);

    private static string? StringOf(JsonNode? node) => node is JsonValue value && value.TryGetValue<string>(out var text) ? text : null;
}
